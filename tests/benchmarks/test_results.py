"""The BENCH_RESULT line contract (benchmarks/_results.py): pass/miss, ratios, the JSON shape, reading it back."""

from __future__ import annotations

import io
import json

import pytest
from _results import PREFIX, Result, bench_result_line, emit, parse, to_dict


def test_a_value_target_passes_or_misses_by_its_comparison() -> None:
    assert Result("s", "p99", 12.0, "ms", target=25, comparison="<=").passed is True
    assert Result("s", "p99", 26.0, "ms", target=25, comparison="<=").passed is False
    assert Result("s", "p99", 25.0, "ms", target=25, comparison="<=").passed is True
    assert Result("s", "rate", 9.0, "x", target=10, comparison=">=").passed is False


def test_a_ratio_target_compares_value_over_baseline() -> None:
    result = Result("ingest-sqlite", "max throughput", 800.0, "events/s", 0.5, ">=", baseline=1000.0, target_on="ratio")
    assert result.ratio == pytest.approx(0.8)
    assert result.passed is True
    low = Result("ingest-sqlite", "max throughput", 400.0, "events/s", 0.5, ">=", baseline=1000.0, target_on="ratio")
    assert low.passed is False


def test_no_target_or_no_value_is_neither_pass_nor_miss() -> None:
    assert Result("s", "records/s", 2500.0, "records/s").passed is None
    assert Result("s", "p99", None, "ms", target=25, comparison="<=").passed is None
    assert Result("s", "p99", float("nan"), "ms", target=25, comparison="<=").passed is None


def test_inconsistent_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="comparison"):
        Result("s", "m", 1.0, "ms", target=1, comparison="<")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="together"):
        Result("s", "m", 1.0, "ms", target=1)
    with pytest.raises(ValueError, match="baseline"):
        Result("s", "m", 1.0, "ms", target=1, comparison=">=", target_on="ratio")


def test_emit_prints_one_line_with_the_documented_fields() -> None:
    out = io.StringIO()
    emit(
        [
            Result("durability-sqlite", "lost acknowledged events", 0, "events", target=0, comparison="<="),
            Result("x", "m", float("inf"), "ms", note="infinite is not JSON"),
        ],
        quick=True,
        out=out,
    )
    text = out.getvalue()
    assert text.count("\n") == 1
    assert text.startswith(PREFIX)
    payload = json.loads(text[len(PREFIX) :])
    assert payload["version"] == 1
    assert payload["quick"] is True
    first = payload["results"][0]
    assert list(first) == [
        "scenario",
        "metric",
        "value",
        "unit",
        "target",
        "comparison",
        "target_on",
        "baseline",
        "ratio",
        "passed",
        "note",
    ]
    assert first["value"] == 0
    assert isinstance(first["value"], int)
    assert first["passed"] is True
    assert payload["results"][1]["value"] is None


def test_parse_reads_every_line_back_and_ignores_the_rest() -> None:
    one = bench_result_line(
        "sweeper-sqlite", [{"metric": "close", "value": 8.5, "unit": "s", "target": 10, "comparison": "<="}]
    )
    two = bench_result_line("reads-sqlite", [{"metric": "lookup p95", "value": 7.0, "unit": "ms"}], quick=True)
    results, quick = parse(f"some output\n{one}\nmore output\n{two}\n")
    assert [(r.scenario, r.metric, r.passed) for r in results] == [
        ("sweeper-sqlite", "close", True),
        ("reads-sqlite", "lookup p95", None),
    ]
    assert quick is True
    assert to_dict(results[0])["target"] == 10


def test_a_reported_verdict_is_kept() -> None:
    line = PREFIX + json.dumps(
        {
            "results": [
                {
                    "scenario": "s",
                    "metric": "m",
                    "value": 1,
                    "unit": "s",
                    "target": 2,
                    "comparison": ">=",
                    "passed": True,
                }
            ]
        }
    )
    [result], quick = parse(line)
    assert result.passed is True
    assert quick is False
