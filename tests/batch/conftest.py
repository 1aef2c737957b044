"""Batch tests keep uploaded files in the test's own data directory, under a small size limit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from innkeeper.core.config import Settings

MAX_SIZE = 64 * 1024


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, data_dir=str(tmp_path / "data"), batch_max_size=MAX_SIZE, batch_chunk_lines=3)
