"""The durability checker (benchmarks/durability.py): what counts as lost, duplicated or inconsistent."""

from __future__ import annotations

import json
from typing import Any

from durability import (
    MARKER,
    Sent,
    StoredEvent,
    StoredSession,
    email_of,
    expected_cart,
    marker_of,
    stored_event,
    verify,
)

BROWSER = "b0000000-0000-4000-8000-000000000000"


def _raw(marker: str, type_: str = "VIEW", **extra: Any) -> str:
    return json.dumps(
        {"type": type_, "browser_id": BROWSER, "ext": {"pageVariantId": "_default", MARKER: marker}, **extra}
    )


def _add(seq: int, item: str, quantity: int, *, ref: str | None = None, session: str = "s1") -> StoredEvent:
    marker = marker_of(0, seq)
    product = {"item_id": item, "quantity": quantity, "price": 1.0}
    return stored_event(ref or f"e{seq}", "ADD", BROWSER, session, "SUCCESS", _raw(marker, "ADD", product=product))


def _view(seq: int, *, ref: str | None = None, session: str | None = "s1") -> StoredEvent:
    return stored_event(ref or f"e{seq}", "VIEW", BROWSER, session, "SUCCESS", _raw(marker_of(0, seq)))


def _sent(seq: int, type_: str, state: str = "acked", ref: str | None = None) -> Sent:
    item = Sent(marker_of(0, seq), BROWSER, seq, type_, 1)
    item.state = state  # type: ignore[assignment]
    item.event_ref = ref if ref is not None else (f"e{seq}" if state == "acked" else None)
    return item


def _session(events: list[StoredEvent], cart: list[tuple[str, int]], **counts: int) -> StoredSession:
    views = sum(e.type == "VIEW" for e in events)
    adds = sum(e.type == "ADD" for e in events)
    return StoredSession(
        "s1",
        BROWSER,
        counts.get("num_events", len(events)),
        counts.get("num_views", views),
        counts.get("num_adds", adds),
        [{"itemId": item, "quantity": quantity, "price": 1.0} for item, quantity in cart],
    )


def test_stored_events_are_read_back_from_their_raw_json() -> None:
    event = _add(3, "SHOES_1", 2)
    assert (event.marker, event.item, event.quantity) == ("0.3", "SHOES_1", 2)
    assert stored_event("r", "VIEW", BROWSER, None, "SUCCESS", "not json").marker is None


def test_the_cart_follows_send_order_and_the_last_add_of_an_item_wins() -> None:
    adds = [_add(5, "A", 3), _add(1, "A", 1), _add(2, "B", 2)]
    assert expected_cart(adds) == [("B", 2), ("A", 3)]
    assert expected_cart([_add(1, "A", 1), _add(2, "A", 0)]) == []


def test_everything_acknowledged_and_consistent_is_clean() -> None:
    events = [_view(0), _add(1, "A", 2), _view(2)]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "ADD"), _sent(2, "VIEW"), _sent(3, "VIEW", "doubt")]}
    check = verify(sent, events, [_session(events, [("A", 2)])], {})
    assert check.problems == 0, check.examples()
    assert (check.acknowledged, check.in_doubt, check.in_doubt_stored) == (3, 1, 0)


def test_an_in_doubt_event_may_be_stored_once() -> None:
    events = [_view(0), _view(1)]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "VIEW", "doubt")]}
    check = verify(sent, events, [_session(events, [])], {})
    assert check.problems == 0, check.examples()
    assert check.in_doubt_stored == 1


def test_an_acknowledged_event_missing_or_under_another_ref_is_lost() -> None:
    events = [_view(0, ref="other")]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "VIEW")]}
    check = verify(sent, events, [_session(events, [])], {})
    assert len(check.lost) == 2
    assert "0.1" in check.lost[1] or "0.1" in check.lost[0]
    assert any("stored as ['other']" in line for line in check.lost)


def test_a_marker_stored_twice_is_a_duplicate_even_when_it_was_in_doubt() -> None:
    events = [_view(0), _view(0, ref="copy"), _view(1, ref="x1"), _view(1, ref="x2")]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "VIEW", "doubt")]}
    check = verify(sent, events, [_session(events, [])], {})
    assert len(check.duplicated) == 2
    assert not check.lost


def test_unknown_unprocessed_and_error_answered_but_stored_events_are_reported() -> None:
    stray = stored_event("zz", "VIEW", BROWSER, "s1", "SUCCESS", _raw("9.9"))
    failed = stored_event("e0", "VIEW", BROWSER, "s1", "FAILED", _raw(marker_of(0, 0)))
    rejected = _view(1, ref="e1")
    events = [stray, failed, rejected]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "VIEW", "rejected")]}
    check = verify(sent, events, [_session([failed, rejected], [])], {})
    assert len(check.unknown) == 1
    assert len(check.not_processed) == 1
    assert len(check.stored_rejected) == 1
    assert check.rejected == 1


def test_session_counters_and_carts_must_match_the_stored_events() -> None:
    events = [_view(0), _add(1, "A", 2), _add(2, "B", 1)]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "ADD"), _sent(2, "ADD")]}
    right = [("A", 2), ("B", 1)]
    assert verify(sent, events, [_session(events, right)], {}).problems == 0
    for session in (
        _session(events, right, num_events=4),
        _session(events, right, num_adds=1),
        _session(events, right, num_views=0),
        _session(events, [("A", 2)]),
        _session(events, [("B", 1), ("A", 2)]),
    ):
        check = verify(sent, events, [session], {})
        assert len(check.inconsistent_sessions) == 1, session


def test_events_without_a_session_or_pointing_at_a_missing_one_are_inconsistent() -> None:
    events = [_view(0, session=None), _view(1, session="gone")]
    sent = {s.marker: s for s in [_sent(0, "VIEW"), _sent(1, "VIEW")]}
    check = verify(sent, events, [], {})
    assert len(check.inconsistent_sessions) == 2


def test_an_identified_browser_must_own_its_email() -> None:
    identity = stored_event("e0", "IDENTITY", BROWSER, "s1", "SUCCESS", _raw(marker_of(0, 0), "IDENTITY"))
    sent = {marker_of(0, 0): _sent(0, "IDENTITY")}
    sessions = [_session([identity], [])]
    assert len(verify(sent, [identity], sessions, {}).identity) == 1
    assert verify(sent, [identity], sessions, {BROWSER: {email_of(BROWSER)}}).problems == 0
