import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import Postern  # noqa: E402


@pytest.fixture
def server(tmp_path):
    """A running server with smtp, submission and submissions on free loopback ports."""
    with Postern(tmp_path / "postern") as s:
        yield s
