"""Order REST API v2.1 (spec §9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["orders"])
