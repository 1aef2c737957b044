"""The one line every benchmark script prints for `benchmarks/run.py`: ``BENCH_RESULT {json}``.

A scenario script measures, then ends with::

    from _results import Result, emit

    emit(
        [
            Result("ingest-sqlite", "throughput", 812.0, "events/s", target=0.5, comparison=">=",
                   baseline=14995.0, target_on="ratio"),
            Result("ingest-sqlite", "p99 at 50% of max", 11.2, "ms", target=25, comparison="<="),
            Result("ingest-sqlite", "events stored vs 201s", 0, "missing", note="informative"),
        ],
        quick=args.quick,
    )

which prints exactly one stdout line (the scripts run as ``python benchmarks/<name>.py``, so
``benchmarks/`` is on ``sys.path`` and ``import _results`` works)::

    BENCH_RESULT {"version": 1, "quick": false, "results": [{"scenario": "ingest-sqlite", "metric": "throughput",
      "value": 812.0, "unit": "events/s", "target": 0.5, "comparison": ">=", "target_on": "ratio",
      "baseline": 14995.0, "ratio": 0.0542, "passed": false, "note": null}, ...]}

Fields of one result:

- ``scenario``: the run.py scenario id (``ingest-sqlite``, ``durability-postgres``, ``sweeper``, …).
- ``metric``: a short human name, unique within the scenario.
- ``value``: the measured number (``null`` if it could not be measured), in ``unit``.
- ``target`` / ``comparison``: the issue's target and how it is met (``">="`` or ``"<="``); both ``null``
  for an informative row.
- ``target_on``: ``"value"`` (the target is in ``unit``) or ``"ratio"`` (the target is a multiple of
  ``baseline``: pass when ``ratio`` meets it).
- ``baseline``: the same metric on the baseline (bare endpoint) in the same run, or ``null``.
- ``ratio``: ``value / baseline`` (computed when not given).
- ``passed``: ``true`` / ``false`` against the target, ``null`` when there is no target or no value.
- ``note``: free text shown under the table (what was measured, at which rate, …).

A script exits non-zero only when the run itself is broken (a crash, a wrong answer from the server, a
lost event): missed performance targets are reported by ``passed: false`` and exit 0.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TextIO

PREFIX = "BENCH_RESULT "
VERSION = 1

Comparison = Literal[">=", "<="]
TargetOn = Literal["value", "ratio"]


@dataclass
class Result:
    """One measured metric of one scenario, with its target (see the module docstring)."""

    scenario: str
    metric: str
    value: float | None
    unit: str
    target: float | None = None
    comparison: Comparison | None = None
    baseline: float | None = None
    ratio: float | None = None
    target_on: TargetOn = "value"
    note: str | None = None
    passed: bool | None = field(default=None)

    def __post_init__(self) -> None:
        if self.comparison not in (None, ">=", "<="):
            raise ValueError(f"comparison must be '>=' or '<=', not {self.comparison!r}")
        if (self.target is None) != (self.comparison is None):
            raise ValueError("target and comparison go together")
        if self.target_on == "ratio" and self.target is not None and self.baseline is None:
            raise ValueError("a target on the ratio needs a baseline")
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline
        if self.passed is None:
            self.passed = check(self)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def check(result: Result) -> bool | None:
    """Whether the result meets its target; None when there is no target or nothing measured."""
    if result.target is None or result.comparison is None:
        return None
    measured = result.ratio if result.target_on == "ratio" else result.value
    if measured is None or not _finite(measured):
        return None
    return measured >= result.target if result.comparison == ">=" else measured <= result.target


def to_dict(result: Result) -> dict[str, Any]:
    """The JSON object of one result (the field order of the module docstring)."""
    data = asdict(result)
    for key in ("value", "target", "baseline", "ratio"):
        if data[key] is not None and not _finite(data[key]):
            data[key] = None  # NaN / infinity are not JSON
        elif isinstance(data[key], float):
            data[key] = round(data[key], 6)
    order = [
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
    return {key: data[key] for key in order}


def from_dict(data: dict[str, Any]) -> Result:
    """A result read back from a BENCH_RESULT line; ``passed`` is kept as the script reported it."""
    return Result(
        scenario=str(data["scenario"]),
        metric=str(data["metric"]),
        value=data.get("value"),
        unit=str(data.get("unit") or ""),
        target=data.get("target"),
        comparison=data.get("comparison"),
        baseline=data.get("baseline"),
        ratio=data.get("ratio"),
        target_on=data.get("target_on") or "value",
        note=data.get("note"),
        passed=data.get("passed"),
    )


def line(results: list[Result], *, quick: bool = False) -> str:
    """The BENCH_RESULT line for these results (no newline)."""
    payload = {"version": VERSION, "quick": quick, "results": [to_dict(r) for r in results]}
    return PREFIX + json.dumps(payload, allow_nan=False)


def bench_result_line(scenario: str, rows: list[dict[str, Any]], *, quick: bool = False) -> str:
    """The BENCH_RESULT line from plain dicts with the fields of `Result` (``scenario`` may be left out)."""
    return line([Result(**{"scenario": scenario, **row}) for row in rows], quick=quick)


def emit(results: list[Result], *, quick: bool = False, out: TextIO | None = None) -> None:
    """Print the BENCH_RESULT line (once, at the end of a scenario script)."""
    stream = out if out is not None else sys.stdout
    stream.write(line(results, quick=quick) + "\n")
    stream.flush()


def parse(text: str) -> tuple[list[Result], bool]:
    """Every result of every BENCH_RESULT line in a script's output, and whether any line said quick."""
    results: list[Result] = []
    quick = False
    for raw in text.splitlines():
        if not raw.startswith(PREFIX):
            continue
        payload = json.loads(raw[len(PREFIX) :])
        quick = quick or bool(payload.get("quick"))
        results += [from_dict(item) for item in payload.get("results", [])]
    return results, quick
