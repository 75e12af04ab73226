"""Fixtures of the library suite (make test-lib): the shared helpers of
tests/pylib (scaled deadlines) are put on sys.path here."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
