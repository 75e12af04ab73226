"""Fixtures of the chart tests (helpers in chartlib.py)."""
import pytest

from chartlib import Renderer, documents


@pytest.fixture(scope="session")
def renderer():
    return Renderer()


@pytest.fixture(scope="session")
def default_docs(renderer):
    """The chart rendered with its default values, as parsed documents."""
    return documents(renderer.render())
