"""Triggered experiences: when a session closes (or an order is placed…), run a TRIGGERED_V3 flow and deliver
what it renders through a connection, exactly once, with retries (spec personalize.md §9)."""
