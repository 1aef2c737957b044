"""Connection tests: where the app keeps its secret key file (the root ``settings`` puts data_dir there)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
