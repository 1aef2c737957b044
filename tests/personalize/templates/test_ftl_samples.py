"""Sitecore's published FreeMarker samples render unchanged, byte for byte (see sitecore_samples/samples.json).

Each sample file is stored verbatim; samples.json gives its source, the data model used, and the output worked
out by hand from FreeMarker's rules (white-space stripping of tag-only lines, en_US number format, ...).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from innkeeper.personalize.templates.ftl import FtlFunction, compile_template

SAMPLES_DIR = Path(__file__).parent / "sitecore_samples"
SAMPLES: list[dict[str, Any]] = json.loads((SAMPLES_DIR / "samples.json").read_text(encoding="utf-8"))
CASES = [
    pytest.param(sample, case, id=f"{sample['name']}-{i}")
    for sample in SAMPLES
    for i, case in enumerate(sample["cases"])
]


def _decode(value: Any) -> Any:
    """JSON model -> Python model: {"$datetime": "..."} markers become aware datetimes."""
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _model(case: dict[str, Any]) -> dict[str, Any]:
    model: dict[str, Any] = _decode(case["model"])
    nodes = _decode(case.get("nodes", []))

    def get_node(name: str) -> Any:
        return next((node for node in nodes if node["name"] == name), None)

    model["getDecisionModelResultNode"] = FtlFunction(get_node)
    return model


def _source(sample: dict[str, Any]) -> str:
    return (SAMPLES_DIR / f"{sample['name']}.ftl").read_text(encoding="utf-8")


def test_every_sample_file_is_listed() -> None:
    listed = {s["name"] for s in SAMPLES}
    on_disk = {p.stem for p in SAMPLES_DIR.glob("*.ftl")}
    assert listed == on_disk
    assert len(listed) >= 6


@pytest.mark.parametrize(("sample", "case"), CASES)
def test_sample_renders_byte_for_byte(sample: dict[str, Any], case: dict[str, Any]) -> None:
    now = datetime.fromisoformat(sample["now"])
    out = compile_template(_source(sample), name=sample["name"]).render(_model(case), now=now)
    assert out == case["expected"]


PROBES = [
    pytest.param(sample, case, id=f"{sample['name']}-{i}")
    for sample in SAMPLES
    for i, case in enumerate(sample["cases"])
    if "probe" in case
]


@pytest.mark.parametrize(("sample", "case"), PROBES)
def test_sample_computes_the_documented_values(sample: dict[str, Any], case: dict[str, Any]) -> None:
    # The epoch snippet only assigns variables; a probe line appended after it shows what they hold.
    now = datetime.fromisoformat(sample["now"])
    out = compile_template(_source(sample) + "\n" + case["probe"]).render(_model(case), now=now)
    assert out == case["probe_expected"]


def test_abandoned_cart_dates_ignore_text_after_the_pattern() -> None:
    # SimpleDateFormat.parse stops where the pattern ends, so "...T13:45:00" parses with "yyyy-MM-dd'T'HH:mm".
    tpl = compile_template('${"2025-06-03T13:45:00.000Z"?datetime("yyyy-MM-dd\'T\'HH:mm")?string("HH:mm dd-MMM-yy")}')
    assert tpl.render({}, now=datetime(2025, 5, 14, tzinfo=UTC)) == "13:45 03-Jun-25"
