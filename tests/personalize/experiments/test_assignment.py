"""Traffic assignment (personalize.md §7.1–7.2): the published vectors, split accuracy, stickiness, validation."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import scipy.stats  # type: ignore[import-untyped]

from innkeeper.personalize.experiments.assignment import (
    Assignment,
    TrafficError,
    assign,
    bucket,
    transient_key,
    unique_draw,
    validate_traffic,
    variant_draw,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "personalize"
VECTORS = DOCS / "bucketing-vectors.json"
BUCKETING_MD = DOCS / "bucketing.md"
GUESTS = 100_000
SHARE_TOLERANCE_PP = 1.0  # absolute percentage points

A, B, C = "var-control", "var-b", "var-c"


@cache
def vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return loaded


@cache
def guest_keys() -> tuple[str, ...]:
    """100,000 uuid4 strings from a seeded generator (the same keys for every test)."""
    rng = random.Random(7_2_2024)
    return tuple(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(GUESTS))


def h64(text: str) -> int:
    """H(s) as personalize.md §7.2 words it, written out independently of the module under test."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def shares(
    traffic: Mapping[str, Any] | None, refs: Sequence[str], flow_ref: str = "flow-shares"
) -> dict[str | None, float]:
    """Percentage of the 100,000 guests per variant ref (``None`` = not allocated)."""
    counts = Counter(
        assign(traffic, flow_ref=flow_ref, guest_key=g, variant_refs=refs).variant_ref for g in guest_keys()
    )
    return {ref: 100.0 * count / GUESTS for ref, count in counts.items()}


# --- published vectors ---------------------------------------------------------------------------


def test_vectors_file_has_at_least_200_cases_of_every_kind() -> None:
    data = vectors()
    groups = data["assignments"]
    total = (
        len(data["bucket"])
        + len(data["draws"])
        + len(data["transientKeys"])
        + sum(len(group["cases"]) for group in groups)
    )
    assert total >= 200
    traffic_objects = [group["traffic"] for group in groups]
    assert None in traffic_objects
    simple = [t for t in traffic_objects if t is not None and t.get("type", "simpleTraffic") == "simpleTraffic"]
    advanced = [t for t in traffic_objects if t is not None and t.get("type") == "advancedTraffic"]
    assert any(t.get("allocation", 100) < 100 for t in simple)
    assert any(len(t.get("splits", [])) == 3 for t in simple)
    assert any(len(t["splits"]) == 3 for t in advanced)
    assert any(case.get("email") is not None for case in data["transientKeys"])
    assert any(case.get("provider") is not None for case in data["transientKeys"])


def test_bucket_vectors() -> None:
    for case in vectors()["bucket"]:
        assert h64("innkeeper-bucket:" + case["guestKey"]) == int(case["h64"])
        assert bucket(case["guestKey"]) == case["bucket"] == 1 + int(case["h64"]) % 120


def test_draw_vectors() -> None:
    for case in vectors()["draws"]:
        flow, guest = case["flowRef"], case["guestKey"]
        assert h64(flow + ":" + guest) == int(case["uniqueH64"])
        assert h64(flow + ":v:" + guest) == int(case["variantH64"])
        assert unique_draw(flow, guest) == case["u"]
        assert variant_draw(flow, guest) == case["v"]
        # The float is the 64-bit draw truncated to 53 bits: within 2^-53 below H/2^64.
        assert 0 <= Fraction(int(case["uniqueH64"]), 2**64) - Fraction(case["u"]) < Fraction(1, 2**53)


def test_transient_key_vectors() -> None:
    for case in vectors()["transientKeys"]:
        if "email" in case:
            key = transient_key(email=case["email"])
            assert key == hashlib.sha256(case["email"].lower().encode()).hexdigest()
        else:
            key = transient_key(provider=case["provider"], id=case["id"])
            assert key == hashlib.sha256(f"{case['provider']}:{case['id']}".encode()).hexdigest()
        assert key == case["guestKey"]
        assert bucket(key) == case["bucket"]


def test_assignment_vectors() -> None:
    for group in vectors()["assignments"]:
        validate_traffic(group["traffic"], group["variantRefs"])
        for case in group["cases"]:
            got = assign(
                group["traffic"],
                flow_ref=group["flowRef"],
                guest_key=case["guestKey"],
                variant_refs=group["variantRefs"],
            )
            expected = Assignment(case["allocated"], case["variantRef"], case["method"], case["bucket"])
            assert got == expected, (group["name"], case)


def reference_implementation() -> dict[str, Any]:
    """Run the ```python block of bucketing.md and return its namespace."""
    blocks = re.findall(r"```python\n(.*?)```", BUCKETING_MD.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], str(BUCKETING_MD), "exec"), namespace)  # noqa: S102 - our own published snippet
    return namespace


def test_reference_implementation_in_docs_passes_every_vector() -> None:
    ref = reference_implementation()
    ref_bucket = cast(Callable[[str], int], ref["bucket"])
    ref_transient_key = cast(Callable[..., str], ref["transient_key"])
    ref_assign = cast(Callable[..., tuple[bool, str | None, str, int]], ref["assign"])
    data = vectors()
    for case in data["bucket"]:
        assert ref_bucket(case["guestKey"]) == case["bucket"]
    for case in data["transientKeys"]:
        if "email" in case:
            assert ref_transient_key(email=case["email"]) == case["guestKey"]
        else:
            assert ref_transient_key(provider=case["provider"], id=case["id"]) == case["guestKey"]
    for group in data["assignments"]:
        for case in group["cases"]:
            got = ref_assign(group["traffic"], group["flowRef"], case["guestKey"], group["variantRefs"])
            assert got == (case["allocated"], case["variantRef"], case["method"], case["bucket"]), (group["name"], case)


def test_reference_implementation_agrees_with_the_library_on_fresh_guests() -> None:
    ref_assign = cast(Callable[..., tuple[bool, str | None, str, int]], reference_implementation()["assign"])
    traffic = {
        "type": "simpleTraffic",
        "allocation": 70,
        "splits": [{"ref": A, "split": 20}, {"ref": B, "split": 45}, {"ref": C, "split": 35}],
    }
    for guest in guest_keys()[:5_000]:
        got = assign(traffic, flow_ref="fresh", guest_key=guest, variant_refs=[A, B, C])
        assert ref_assign(traffic, "fresh", guest, [A, B, C]) == (
            got.allocated,
            got.variant_ref,
            got.method,
            got.bucket,
        )


def test_vectors_include_guests_next_to_boundaries() -> None:
    """Guests whose draws are within 1e-4 of an allocation or split boundary are part of the vectors."""
    near = 0
    for group in vectors()["assignments"]:
        traffic = group["traffic"]
        if traffic is None or traffic.get("type") == "advancedTraffic" or "splits" not in traffic:
            continue
        cumulative = 0.0
        boundaries = []
        for split in traffic["splits"]:
            cumulative += split["split"] / 100
            boundaries.append(("v", cumulative))
        boundaries.append(("u", traffic.get("allocation", 100) / 100))
        for case in group["cases"]:
            draws = {
                "u": unique_draw(group["flowRef"], case["guestKey"]),
                "v": variant_draw(group["flowRef"], case["guestKey"]),
            }
            near += any(0 < abs(draws[kind] - edge) < 1e-4 for kind, edge in boundaries)
    assert near >= 10


# --- the algorithm as specified ------------------------------------------------------------------


def test_bucket_is_the_spec_formula_and_in_range() -> None:
    for guest in guest_keys()[:2_000]:
        value = bucket(guest)
        assert value == 1 + h64("innkeeper-bucket:" + guest) % 120
        assert 1 <= value <= 120


def test_unique_method_follows_the_spec_formula() -> None:
    traffic = {"allocation": 40, "splits": [{"ref": A, "split": 30}, {"ref": B, "split": 70}]}
    for guest in guest_keys()[:2_000]:
        u = h64("flow-x:" + guest) / 2**64
        v = h64("flow-x:v:" + guest) / 2**64
        expected = None if u >= 0.40 else (A if v < 0.30 else B)
        got = assign(traffic, flow_ref="flow-x", guest_key=guest, variant_refs=[A, B])
        assert got.variant_ref == expected
        assert got.allocated is (expected is not None)
        assert got.method == "UNIQUE"
        assert got.bucket == bucket(guest)
        assert 0.0 <= unique_draw("flow-x", guest) < 1.0
        assert 0.0 <= variant_draw("flow-x", guest) < 1.0


def test_universal_method_follows_the_spec_formula() -> None:
    traffic = {
        "type": "advancedTraffic",
        "allocationLow": 11,
        "allocationHigh": 90,
        "splits": [
            {"ref": A, "split": 50, "lowSplit": 11, "highSplit": 50},
            {"ref": B, "split": 50, "lowSplit": 51, "highSplit": 90},
        ],
    }
    for guest in guest_keys()[:2_000]:
        b = bucket(guest)
        expected = None if not 11 <= b <= 90 else (A if b <= 50 else B)
        got = assign(traffic, flow_ref=f"any-{guest[:4]}", guest_key=guest, variant_refs=[A, B])
        assert got == Assignment(expected is not None, expected, "UNIVERSAL", b)


def test_universal_bucket_does_not_depend_on_the_flow() -> None:
    traffic = {
        "type": "advancedTraffic",
        "splits": [{"ref": A, "lowSplit": 1, "highSplit": 60}, {"ref": B, "lowSplit": 61, "highSplit": 120}],
    }
    for guest in guest_keys()[:500]:
        first = assign(traffic, flow_ref="flow-1", guest_key=guest, variant_refs=[A, B])
        second = assign(traffic, flow_ref="flow-2", guest_key=guest, variant_refs=[A, B])
        assert first == second


def test_assignment_is_a_pure_function() -> None:
    """Same inputs, same variant: across repeated calls, copies of the traffic object and key order."""
    traffic = {
        "type": "simpleTraffic",
        "allocation": 80,
        "splits": [{"ref": A, "split": 34}, {"ref": B, "split": 33}, {"ref": C, "split": 33}],
    }
    reordered = dict(reversed(list(copy.deepcopy(traffic).items())))
    for guest in guest_keys()[:1_000]:
        first = assign(traffic, flow_ref="sticky", guest_key=guest, variant_refs=[A, B, C])
        for _ in range(3):
            assert assign(traffic, flow_ref="sticky", guest_key=guest, variant_refs=[A, B, C]) == first
        assert assign(reordered, flow_ref="sticky", guest_key=guest, variant_refs=(A, B, C)) == first


def test_transient_keys() -> None:
    assert transient_key(email="Jane.Doe@Example.COM") == hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert transient_key(email="Jane.Doe@Example.COM") == transient_key(email="jane.doe@example.com")
    assert transient_key(provider="crm", id="42") == hashlib.sha256(b"crm:42").hexdigest()
    assert transient_key(provider="crm", id="42") != transient_key(provider="CRM", id="42")
    with pytest.raises(ValueError, match="needs email"):
        transient_key()
    with pytest.raises(ValueError, match="needs email"):
        transient_key(provider="crm")
    with pytest.raises(ValueError, match="not both"):
        transient_key(email="a@b.c", provider="crm", id="1")


# --- split accuracy over 100,000 guests ----------------------------------------------------------


@pytest.mark.parametrize(
    ("traffic", "refs", "expected"),
    [
        pytest.param(
            {"type": "simpleTraffic", "allocation": 100, "splits": [{"ref": A, "split": 50}, {"ref": B, "split": 50}]},
            [A, B],
            {A: 50.0, B: 50.0},
            id="50/50",
        ),
        pytest.param(
            {"splits": [{"ref": A, "split": 34}, {"ref": B, "split": 33}, {"ref": C, "split": 33}]},
            [A, B, C],
            {A: 34.0, B: 33.0, C: 33.0},
            id="34/33/33",
        ),
        pytest.param(
            {"type": "simpleTraffic", "splits": [{"ref": A, "split": 10}, {"ref": B, "split": 90}]},
            [A, B],
            {A: 10.0, B: 90.0},
            id="10/90",
        ),
        pytest.param(
            {"type": "simpleTraffic", "allocation": 25, "splits": [{"ref": A, "split": 60}, {"ref": B, "split": 40}]},
            [A, B],
            {None: 75.0, A: 15.0, B: 10.0},
            id="allocation-25",
        ),
        pytest.param(None, [A, B, C], {A: 34.0, B: 33.0, C: 33.0}, id="no-traffic-even-split"),
        pytest.param(
            {
                "type": "advancedTraffic",
                "allocationLow": 1,
                "allocationHigh": 60,
                "splits": [
                    {"ref": A, "split": 60, "lowSplit": 1, "highSplit": 36},
                    {"ref": B, "split": 40, "lowSplit": 37, "highSplit": 60},
                ],
            },
            [A, B],
            {None: 50.0, A: 30.0, B: 20.0},
            id="universal-1..60",
        ),
    ],
)
def test_observed_shares_match_configured_weights(
    traffic: Mapping[str, Any] | None, refs: list[str], expected: dict[str | None, float]
) -> None:
    observed = shares(traffic, refs)
    assert set(observed) <= set(expected)
    for ref, percentage in expected.items():
        assert abs(observed.get(ref, 0.0) - percentage) <= SHARE_TOLERANCE_PP, (ref, observed)


def test_allocated_guests_are_split_by_the_configured_weights() -> None:
    """Within the 25 % allocated, 60/40 holds too (tolerance ±1 pp of the allocated guests)."""
    observed = shares({"allocation": 25, "splits": [{"ref": A, "split": 60}, {"ref": B, "split": 40}]}, [A, B])
    allocated = observed[A] + observed[B]
    assert abs(100 * observed[A] / allocated - 60) <= SHARE_TOLERANCE_PP
    assert abs(100 * observed[B] / allocated - 40) <= SHARE_TOLERANCE_PP


def test_unique_assignments_of_two_flows_are_independent() -> None:
    """The same guests in two 50/50 flows: each of the four combinations gets 25 % (±1 pp, 40,000 guests)."""
    traffic = {"splits": [{"ref": A, "split": 50}, {"ref": B, "split": 50}]}
    guests = guest_keys()[:40_000]
    pairs = Counter(
        (
            assign(traffic, flow_ref="flow-one", guest_key=g, variant_refs=[A, B]).variant_ref,
            assign(traffic, flow_ref="flow-two", guest_key=g, variant_refs=[A, B]).variant_ref,
        )
        for g in guests
    )
    for pair in [(A, A), (A, B), (B, A), (B, B)]:
        assert abs(100 * pairs[pair] / len(guests) - 25) <= SHARE_TOLERANCE_PP


def test_universal_buckets_are_uniform() -> None:
    counts = Counter(bucket(g) for g in guest_keys())
    assert set(counts) == set(range(1, 121))
    expected = GUESTS / 120
    # ±15 % is more than 4 standard deviations of a bucket count (sd ≈ 28.7 of 833).
    assert all(abs(count - expected) <= 0.15 * expected for count in counts.values())
    result = scipy.stats.chisquare([counts[b] for b in range(1, 121)])
    assert result.pvalue > 0.001


def test_allocation_draws_are_uniform() -> None:
    draws = [unique_draw("uniform-flow", g) for g in guest_keys()]
    result = scipy.stats.kstest(draws, "uniform")
    assert result.pvalue > 0.001


# --- validation ----------------------------------------------------------------------------------


def test_valid_traffic_objects_pass() -> None:
    validate_traffic(None, [A])
    validate_traffic({}, [A, B])
    validate_traffic({"type": "simpleTraffic", "allocation": 0, "splits": []}, [A, B])
    validate_traffic({"allocation": 100.0, "splits": [{"ref": A, "split": 100.0}]}, [A, B])
    validate_traffic({"weightingAlgorithm": "MULTI_ARM_BANDIT", "splits": [{"ref": A, "split": 100}]}, [A])
    validate_traffic({"type": "advancedTraffic", "splits": [{"ref": A, "lowSplit": 1, "highSplit": 120}]}, [A])


def simple(*splits: tuple[Any, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "simpleTraffic", "splits": [{"ref": ref, "split": split} for ref, split in splits], **extra}


def advanced(low: Any, high: Any, *ranges: tuple[str, Any, Any]) -> dict[str, Any]:
    return {
        "type": "advancedTraffic",
        "allocationLow": low,
        "allocationHigh": high,
        "splits": [{"ref": ref, "lowSplit": lo, "highSplit": hi} for ref, lo, hi in ranges],
    }


BAD_TRAFFIC: list[Any] = [
    pytest.param({"type": "weirdTraffic"}, [A], "traffic.type must be", id="type"),
    pytest.param({"weightingAlgorithm": "RANDOM"}, [A], "weightingAlgorithm must be one of", id="algorithm"),
    pytest.param(["not", "an", "object"], [A], "traffic must be an object", id="not-object"),
    pytest.param(None, [], "at least one variant", id="no-variants"),
    pytest.param(None, [A, A], "variant refs must be unique", id="duplicate-variants"),
    pytest.param(None, A, "not a string", id="refs-string"),
    pytest.param({"splits": "A:100"}, [A], "splits must be a list", id="splits-string"),
    pytest.param({"splits": [42]}, [A], r"splits\[0\] must be an object", id="split-not-object"),
    pytest.param({"splits": [{"split": 100}]}, [A], r"splits\[0\]\.ref must be a non-empty string", id="split-no-ref"),
    pytest.param(simple((C, 100)), [A, B], "'var-c' is not a variant of this flow", id="unknown-ref"),
    pytest.param(simple((A, 50), (A, 50)), [A, B], "appears more than once", id="repeated-ref"),
    pytest.param(simple((A, 60), (B, 30)), [A, B], "must sum to 100, got 90", id="sum-90"),
    pytest.param(simple((A, 60), (B, 60)), [A, B], "must sum to 100, got 120", id="sum-120"),
    pytest.param(simple((A, 50.5), (B, 49.5)), [A, B], r"splits\[0\]\.split must be a whole number", id="fraction"),
    pytest.param(simple((A, "50"), (B, 50)), [A, B], "must be a whole number, got '50'", id="string-split"),
    pytest.param(simple((A, True), (B, 99)), [A, B], "must be a whole number, got True", id="bool-split"),
    pytest.param(simple((A, -10), (B, 110)), [A, B], "must be between 0 and 100, got -10", id="negative-split"),
    pytest.param(simple((A, None), (B, 100)), [A, B], "must be a whole number, got None", id="missing-split"),
    pytest.param(
        simple((A, 100), allocation=101), [A], "allocation must be between 0 and 100, got 101", id="alloc>100"
    ),
    pytest.param(simple((A, 100), allocation=-1), [A], "allocation must be between 0 and 100", id="alloc<0"),
    pytest.param(simple((A, 100), allocation=12.5), [A], "allocation must be a whole number", id="alloc-fraction"),
    pytest.param(simple((A, 100), allocation=float("nan")), [A], "allocation must be a whole number", id="alloc-nan"),
    pytest.param(advanced(0, 60, (A, 1, 60)), [A], "allocationLow must be between 1 and 120, got 0", id="low-0"),
    pytest.param(
        advanced(1, 121, (A, 1, 121)), [A], "allocationHigh must be between 1 and 120, got 121", id="high-121"
    ),
    pytest.param(advanced(61, 60, (A, 60, 61)), [A], "must not exceed traffic.allocationHigh", id="low>high"),
    pytest.param(
        {"type": "advancedTraffic", "allocationLow": 1, "splits": [{"ref": A, "lowSplit": 1, "highSplit": 120}]},
        [A],
        "needs both allocationLow and allocationHigh",
        id="half-allocation",
    ),
    pytest.param({"type": "advancedTraffic"}, [A], "needs splits", id="advanced-no-splits"),
    pytest.param(advanced(1, 60, (A, 1, 30), (B, 30, 60)), [A, B], "overlaps another split", id="overlap"),
    pytest.param(advanced(1, 60, (A, 1, 29), (B, 31, 60)), [A, B], "buckets 30..30 .* belong to no split", id="gap"),
    pytest.param(advanced(1, 60, (A, 1, 30)), [A], "buckets 31..60 .* belong to no split", id="gap-at-end"),
    pytest.param(advanced(10, 60, (A, 11, 60)), [A], "buckets 10..10 .* belong to no split", id="gap-at-start"),
    pytest.param(
        advanced(1, 60, (A, 1, 30), (B, 31, 61)), [A, B], "31..61 is outside the allocation range 1..60", id="outside"
    ),
    pytest.param(
        advanced(1, 60, (A, 30, 1)), [A], "lowSplit \\(30\\) must not exceed highSplit \\(1\\)", id="split-low>high"
    ),
    pytest.param(advanced(1, 60, (A, 1.5, 60)), [A], "lowSplit must be a whole number", id="split-fraction"),
    pytest.param(
        {"type": "advancedTraffic", "splits": [{"ref": A, "lowSplit": 1}]},
        [A],
        "needs both lowSplit and highSplit",
        id="half-range",
    ),
]


@pytest.mark.parametrize(("traffic", "refs", "message"), BAD_TRAFFIC)
def test_validate_traffic_rejects_bad_input(traffic: Any, refs: Any, message: str) -> None:
    with pytest.raises(TrafficError, match=message):
        validate_traffic(traffic, refs)
    with pytest.raises(TrafficError, match=message):
        assign(traffic, flow_ref="flow", guest_key="guest", variant_refs=refs)


def test_traffic_error_is_a_value_error() -> None:
    assert issubclass(TrafficError, ValueError)
