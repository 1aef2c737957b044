"""Deterministic traffic assignment of guests to flow variants (personalize.md §7.1–7.2).

Everything here is a pure function of its inputs: the same guest key, flow ref and traffic object
always give the same :class:`Assignment`. *Stickiness* (a guest keeps their first assignment even
when the splits change later) is the caller's job: persist the first result in ``flow_assignment``
and reuse it.

The hashing scheme is published in ``docs/personalize/bucketing.md`` together with a reference
implementation and test vectors (``docs/personalize/bucketing-vectors.json``) so that other
implementations produce identical assignments. In short, with ``H(s)`` the first 8 bytes of
``sha256(utf8(s))`` read as a big-endian unsigned 64-bit integer:

* ``bucket(g) = 1 + H("innkeeper-bucket:" + g) mod 120`` (the Universal bucket, 1..120);
* Unique method: ``u = H(flowRef + ":" + g) / 2^64``; the guest is allocated iff
  ``u < allocation/100``; the variant is picked by ``v = H(flowRef + ":v:" + g) / 2^64`` as the
  first split (in ``splits`` order) whose cumulative percentage ``c`` satisfies ``v < c/100``;
* Universal method (``advancedTraffic``): allocated iff ``allocationLow <= bucket <= allocationHigh``;
  the variant is the split whose ``[lowSplit, highSplit]`` contains the bucket.

Comparisons are done in exact integer arithmetic (``100·H < c·2^64``), so no floating-point rounding
can move a guest across a boundary; :func:`unique_draw` and :func:`variant_draw` return the draws as
floats for display and debugging only.

``MULTI_ARM_BANDIT`` (Optimized testing, §7.4) is not implemented yet: a traffic object with that
``weightingAlgorithm`` is assigned exactly like ``USER_DEFINED`` — the Unique method with the
object's own ``allocation`` and ``splits``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "BUCKETS",
    "Assignment",
    "TrafficError",
    "assign",
    "bucket",
    "transient_key",
    "unique_draw",
    "validate_traffic",
    "variant_draw",
]

BUCKETS: Final = 120
"""Number of Universal buckets; buckets are numbered 1..120."""

_TWO_64: Final = 1 << 64
_BUCKET_PREFIX: Final = "innkeeper-bucket:"
_SIMPLE: Final = "simpleTraffic"
_ADVANCED: Final = "advancedTraffic"
_ALGORITHMS: Final = frozenset({"USER_DEFINED", "MULTI_ARM_BANDIT"})


class TrafficError(ValueError):
    """A traffic object is malformed or does not match the flow's variants."""


@dataclass(frozen=True)
class Assignment:
    """The outcome of :func:`assign` for one guest and one flow.

    ``allocated`` is false for guests outside the traffic allocation (the experience hold-out);
    ``variant_ref`` is then ``None``. ``bucket`` is the guest's Universal bucket (1..120), reported
    whatever the method (it is ``debug.bucket`` in decision-model results).
    """

    allocated: bool
    variant_ref: str | None
    method: Literal["UNIQUE", "UNIVERSAL"]
    bucket: int


def _h64(text: str) -> int:
    """First 8 bytes of ``sha256(utf8(text))`` as a big-endian unsigned integer."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _as_unit_float(value: int) -> float:
    """``value / 2^64`` truncated to 53 bits, so the float is always in [0, 1)."""
    return (value >> 11) / float(1 << 53)


def bucket(guest_key: str) -> int:
    """The guest's Universal bucket: ``1 + H("innkeeper-bucket:" + guest_key) mod 120``."""
    return 1 + _h64(_BUCKET_PREFIX + guest_key) % BUCKETS


def _unique_h(flow_ref: str, guest_key: str) -> int:
    return _h64(flow_ref + ":" + guest_key)


def _variant_h(flow_ref: str, guest_key: str) -> int:
    return _h64(flow_ref + ":v:" + guest_key)


def unique_draw(flow_ref: str, guest_key: str) -> float:
    """The allocation draw ``u = H(flowRef + ":" + g) / 2^64`` ∈ [0, 1) (truncated to 53 bits).

    Decisions use the exact integer, see :func:`assign`; this float is for display and debugging.
    """
    return _as_unit_float(_unique_h(flow_ref, guest_key))


def variant_draw(flow_ref: str, guest_key: str) -> float:
    """The variant draw ``v = H(flowRef + ":v:" + g) / 2^64`` ∈ [0, 1) (truncated to 53 bits)."""
    return _as_unit_float(_variant_h(flow_ref, guest_key))


def transient_key(*, email: str | None = None, provider: str | None = None, id: str | None = None) -> str:
    """Stand-in guest key for a transient guest (§7.2), as lowercase hex SHA-256.

    Either ``email`` — ``sha256(lower(email))`` — or both ``provider`` and ``id`` —
    ``sha256(provider + ":" + id)``. The email is lowercased with Python's ``str.lower()`` and
    otherwise used as given (no trimming); the identifier is used as given.
    """
    if email is not None:
        if provider is not None or id is not None:
            raise ValueError("transient_key takes either email or provider and id, not both")
        return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()
    if provider is None or id is None:
        raise ValueError("transient_key needs email, or both provider and id")
    return hashlib.sha256((provider + ":" + id).encode("utf-8")).hexdigest()


# --- traffic objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Simple:
    allocation: int
    splits: tuple[tuple[str, int], ...]  # (ref, percentage) in splits order


@dataclass(frozen=True)
class _Advanced:
    low: int
    high: int
    ranges: tuple[tuple[str, int, int], ...]  # (ref, lowSplit, highSplit)


def _whole_number(value: object, what: str, low: int, high: int) -> int:
    """An integer in ``low..high``; JSON floats with an integral value (``50.0``) are accepted."""
    number: int
    if isinstance(value, bool):
        raise TrafficError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise TrafficError(f"{what} must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise TrafficError(f"{what} must be between {low} and {high}, got {number}")
    return number


def _even_splits(variant_refs: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """Distribute evenly: ``100 // n`` each, the remainder one by one to the first variants (34/33/33)."""
    share, remainder = divmod(100, len(variant_refs))
    return tuple((ref, share + (1 if index < remainder else 0)) for index, ref in enumerate(variant_refs))


def _split_entries(traffic: Mapping[str, Any], variant_refs: Sequence[str]) -> list[tuple[int, str, Mapping[str, Any]]]:
    """The ``splits`` entries, checked for shape, known and unique refs."""
    splits = traffic.get("splits")
    if splits is None:
        return []
    if isinstance(splits, str | bytes) or not isinstance(splits, Sequence):
        raise TrafficError(f"traffic.splits must be a list, got {type(splits).__name__}")
    known = set(variant_refs)
    seen: set[str] = set()
    entries: list[tuple[int, str, Mapping[str, Any]]] = []
    for index, entry in enumerate(splits):
        where = f"traffic.splits[{index}]"
        if not isinstance(entry, Mapping):
            raise TrafficError(f"{where} must be an object, got {type(entry).__name__}")
        ref = entry.get("ref")
        if not isinstance(ref, str) or not ref:
            raise TrafficError(f"{where}.ref must be a non-empty string, got {ref!r}")
        if ref not in known:
            raise TrafficError(f"{where}.ref {ref!r} is not a variant of this flow (variants: {sorted(known)})")
        if ref in seen:
            raise TrafficError(f"{where}.ref {ref!r} appears more than once in traffic.splits")
        seen.add(ref)
        entries.append((index, ref, entry))
    return entries


def _parse_simple(traffic: Mapping[str, Any], variant_refs: Sequence[str]) -> _Simple:
    raw_allocation = traffic.get("allocation")
    allocation = 100 if raw_allocation is None else _whole_number(raw_allocation, "traffic.allocation", 0, 100)
    entries = _split_entries(traffic, variant_refs)
    if not entries:
        return _Simple(allocation, _even_splits(variant_refs))
    splits = tuple(
        (ref, _whole_number(entry.get("split"), f"traffic.splits[{index}].split", 0, 100))
        for index, ref, entry in entries
    )
    total = sum(percentage for _, percentage in splits)
    if total != 100:
        raise TrafficError(f"traffic.splits percentages must sum to 100, got {total}")
    return _Simple(allocation, splits)


def _parse_advanced(traffic: Mapping[str, Any], variant_refs: Sequence[str]) -> _Advanced:
    raw_low, raw_high = traffic.get("allocationLow"), traffic.get("allocationHigh")
    if raw_low is None and raw_high is None:
        low, high = 1, BUCKETS
    elif raw_low is None or raw_high is None:
        raise TrafficError("advancedTraffic needs both allocationLow and allocationHigh (or neither, for 1..120)")
    else:
        low = _whole_number(raw_low, "traffic.allocationLow", 1, BUCKETS)
        high = _whole_number(raw_high, "traffic.allocationHigh", 1, BUCKETS)
        if low > high:
            raise TrafficError(f"traffic.allocationLow ({low}) must not exceed traffic.allocationHigh ({high})")
    entries = _split_entries(traffic, variant_refs)
    if not entries:
        raise TrafficError("advancedTraffic needs splits with lowSplit/highSplit bucket ranges")
    ranges: list[tuple[str, int, int]] = []
    for index, ref, entry in entries:
        where = f"traffic.splits[{index}]"
        raw_split_low, raw_split_high = entry.get("lowSplit"), entry.get("highSplit")
        if raw_split_low is None and raw_split_high is None:
            continue  # a split with no bucket range receives no traffic
        if raw_split_low is None or raw_split_high is None:
            raise TrafficError(f"{where} needs both lowSplit and highSplit (or neither, for no traffic)")
        split_low = _whole_number(raw_split_low, f"{where}.lowSplit", 1, BUCKETS)
        split_high = _whole_number(raw_split_high, f"{where}.highSplit", 1, BUCKETS)
        if split_low > split_high:
            raise TrafficError(f"{where}.lowSplit ({split_low}) must not exceed highSplit ({split_high})")
        if split_low < low or split_high > high:
            raise TrafficError(
                f"{where} bucket range {split_low}..{split_high} is outside the allocation range {low}..{high}"
            )
        ranges.append((ref, split_low, split_high))
    ranges.sort(key=lambda item: item[1])
    expected_next = low
    for ref, split_low, split_high in ranges:
        if split_low < expected_next:
            raise TrafficError(f"bucket range {split_low}..{split_high} of split {ref!r} overlaps another split")
        if split_low > expected_next:
            raise TrafficError(
                f"buckets {expected_next}..{split_low - 1} of the allocation range {low}..{high} belong to no split"
            )
        expected_next = split_high + 1
    if expected_next <= high:
        raise TrafficError(f"buckets {expected_next}..{high} of the allocation range {low}..{high} belong to no split")
    return _Advanced(low, high, tuple(ranges))


def _parse(traffic: Mapping[str, Any] | None, variant_refs: Sequence[str]) -> _Simple | _Advanced:
    if isinstance(variant_refs, str):
        raise TrafficError("variant_refs must be a sequence of refs, not a string")
    if not variant_refs:
        raise TrafficError("a flow needs at least one variant to assign traffic to")
    if len(set(variant_refs)) != len(variant_refs):
        raise TrafficError(f"variant refs must be unique, got {list(variant_refs)}")
    if traffic is None:
        return _Simple(100, _even_splits(variant_refs))
    if not isinstance(traffic, Mapping):
        raise TrafficError(f"traffic must be an object, got {type(traffic).__name__}")
    algorithm = traffic.get("weightingAlgorithm")
    if algorithm is not None and algorithm not in _ALGORITHMS:
        raise TrafficError(f"traffic.weightingAlgorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    kind = traffic.get("type", _SIMPLE)
    if kind is None or kind == _SIMPLE:
        return _parse_simple(traffic, variant_refs)
    if kind == _ADVANCED:
        return _parse_advanced(traffic, variant_refs)
    raise TrafficError(f"traffic.type must be {_SIMPLE!r} or {_ADVANCED!r}, got {kind!r}")


def validate_traffic(traffic: Mapping[str, Any] | None, variant_refs: Sequence[str]) -> None:
    """Check a traffic object against the flow's variant refs; raise :class:`TrafficError` if it is unusable.

    Rules: ``type`` is ``simpleTraffic`` (default) or ``advancedTraffic``; ``weightingAlgorithm``
    is ``USER_DEFINED`` or ``MULTI_ARM_BANDIT`` if given; every split ``ref`` is one of
    ``variant_refs`` and appears once (variants without a split receive no traffic).

    * ``simpleTraffic``: ``allocation`` is a whole number 0..100 (default 100); each ``split`` is
      a whole number 0..100 and they sum to 100. No (or empty) ``splits`` means an even split
      over ``variant_refs`` in their order (e.g. 34/33/33).
    * ``advancedTraffic``: ``allocationLow``/``allocationHigh`` are whole numbers 1..120 with
      ``low <= high`` (both absent means 1..120); each split has ``lowSplit <= highSplit`` inside
      the allocation range (both absent means no buckets); the ranges do not overlap and together
      cover the allocation range without gaps. The ``split`` percentage is informational and ignored.

    ``None`` traffic is valid: 100 % allocation, even split over the variants.
    Whole numbers may arrive as integral JSON floats (``50.0``). Unknown keys are ignored.
    """
    _parse(traffic, variant_refs)


def assign(
    traffic: Mapping[str, Any] | None, *, flow_ref: str, guest_key: str, variant_refs: Sequence[str]
) -> Assignment:
    """Assign a guest to a variant of a flow (§7.2); a pure function of its arguments.

    ``guest_key`` is the guest ref, or :func:`transient_key` for a transient guest. Raises
    :class:`TrafficError` for traffic objects :func:`validate_traffic` rejects.
    """
    parsed = _parse(traffic, variant_refs)
    guest_bucket = bucket(guest_key)
    if isinstance(parsed, _Advanced):
        if not parsed.low <= guest_bucket <= parsed.high:
            return Assignment(allocated=False, variant_ref=None, method="UNIVERSAL", bucket=guest_bucket)
        for ref, split_low, split_high in parsed.ranges:
            if split_low <= guest_bucket <= split_high:
                return Assignment(allocated=True, variant_ref=ref, method="UNIVERSAL", bucket=guest_bucket)
        raise AssertionError("validated ranges cover the allocation range")  # pragma: no cover
    # u < allocation/100  ⟺  100·H < allocation·2^64, exactly.
    if 100 * _unique_h(flow_ref, guest_key) >= parsed.allocation * _TWO_64:
        return Assignment(allocated=False, variant_ref=None, method="UNIQUE", bucket=guest_bucket)
    scaled_draw = 100 * _variant_h(flow_ref, guest_key)
    cumulative = 0
    for ref, percentage in parsed.splits:
        cumulative += percentage
        if scaled_draw < cumulative * _TWO_64:
            return Assignment(allocated=True, variant_ref=ref, method="UNIQUE", bucket=guest_bucket)
    raise AssertionError("validated splits sum to 100")  # pragma: no cover
