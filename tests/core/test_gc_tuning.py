"""A server's garbage collector: what exists at start is frozen, and young passes run every 10,000 allocations."""

from __future__ import annotations

import gc

from innkeeper.core.runtime import SERVER_GC_THRESHOLD, freeze_long_lived_objects


def test_a_started_server_freezes_what_exists_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        freeze_long_lived_objects()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (SERVER_GC_THRESHOLD, 10, 10)
        gc.set_threshold(50_000, 5, 5)  # a larger setting of the operator's own is kept
        freeze_long_lived_objects()
        assert gc.get_threshold() == (50_000, 5, 5)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
