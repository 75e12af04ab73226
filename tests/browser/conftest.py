"""The browser suite's imports: the shared test machinery in tests/pylib."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
