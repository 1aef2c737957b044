"""Fixtures for the condition tests: one JS sandbox per test module (isolates are per thread inside it)."""

from __future__ import annotations

import pytest

from innkeeper.personalize.conditions import JsSandbox


@pytest.fixture(scope="module")
def sandbox() -> JsSandbox:
    """A sandbox with the production limits; generous timeouts are set explicitly where a test needs them."""
    return JsSandbox()
