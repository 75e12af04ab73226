"""Fixtures of the chart tests (helpers in chartlib.py; the kubelet's
ConfigMap writer comes from the shared tests/pylib, put on sys.path here)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))

from chartlib import Renderer, documents


@pytest.fixture(scope="session")
def renderer():
    return Renderer()


@pytest.fixture(scope="session")
def default_docs(renderer):
    """The chart rendered with its default values, as parsed documents."""
    return documents(renderer.render())
