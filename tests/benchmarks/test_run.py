"""benchmarks/run.py: the table, scenario selection, and how a scenario's exit is classified (no timing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import _machine
import pytest
import run
from _results import Result


def _scenario(script: str, sid: str = "demo-sqlite") -> run.Scenario:
    return run.Scenario(sid, script, (), "a demo")


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """run.py looking for scenario scripts in a temporary folder (with the real _results module on sys.path)."""
    monkeypatch.setattr(run, "HERE", tmp_path)
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")
    (tmp_path / "_results.py").write_text((Path(run.__file__).parent / "_results.py").read_text())
    return tmp_path


def _write(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(body)


def test_numbers_are_compact() -> None:
    assert run.fmt_number(14995.2) == "14,995"
    assert run.fmt_number(812) == "812"
    assert run.fmt_number(25.34) == "25.3"
    assert run.fmt_number(4.213) == "4.21"
    assert run.fmt_number(0.0542) == "0.054"
    assert run.fmt_number(None) == "—"


def test_targets_read_as_the_issue_states_them() -> None:
    ratio = Result("i", "max throughput", 800.0, "events/s", 0.5, ">=", baseline=1600.0, target_on="ratio")
    assert run.fmt_target(ratio) == "≥ 0.5× baseline"
    assert run.fmt_target(Result("i", "p99", 30.0, "ms", 25, "<=")) == "≤ 25 ms"
    assert run.fmt_target(Result("i", "info", 1.0, "s")) == "—"
    assert run.verdict(ratio) == "pass"
    assert run.verdict(Result("i", "p99", 30.0, "ms", 25, "<=")) == "MISS"
    assert run.verdict(Result("i", "info", 1.0, "s")) == "info"


def test_the_table_has_one_row_per_result_and_says_why_a_scenario_did_not_run() -> None:
    ok = run.Outcome(
        _scenario("ingest.py", "ingest-sqlite"),
        "ok",
        results=[
            Result("ingest-sqlite", "max throughput", 800.0, "events/s", 0.5, ">=", baseline=1600.0, target_on="ratio"),
            Result("ingest-sqlite", "p99 at 50% of max", 31.5, "ms", 25, "<="),
        ],
    )
    missing = run.Outcome(_scenario("reads.py", "reads-sqlite"), "missing", "not run: script missing")
    crashed = run.Outcome(_scenario("batch.py", "batch-sqlite"), "failed", "exit status 1")
    rows = run.table_rows([ok, missing, crashed])
    assert rows == [
        ["ingest-sqlite", "max throughput", "800 events/s", "≥ 0.5× baseline", "1,600 events/s", "0.500", "pass"],
        ["ingest-sqlite", "p99 at 50% of max", "31.5 ms", "≤ 25 ms", "—", "—", "MISS"],
        ["reads-sqlite", "—", "—", "—", "—", "—", "not run: script missing"],
        ["batch-sqlite", "—", "—", "—", "—", "—", "CRASHED: exit status 1"],
    ]
    lines = run.render_table(rows).splitlines()
    assert lines[0].split(" | ")[0].strip() == "scenario"
    assert lines[0].rstrip().endswith("pass/miss")
    assert set(lines[1]) <= {"-", "+"}
    assert len(lines) == 2 + len(rows)
    assert len({line.index("|") for line in lines if "|" in line}) == 1  # the columns line up


def test_select_takes_ids_and_prefixes_once_each() -> None:
    assert [s.id for s in run.select(["ingest"])] == ["ingest-sqlite", "ingest-postgres"]
    assert [s.id for s in run.select(["durability-sqlite", "durability"])] == [
        "durability-sqlite",
        "durability-postgres",
    ]
    assert len(run.select(None)) == len(run.SCENARIOS)
    with pytest.raises(SystemExit, match="no scenario"):
        run.select(["nope"])


def test_postgres_scenarios_get_a_database_of_their_own() -> None:
    ingest = next(s for s in run.SCENARIOS if s.id == "ingest-postgres")
    assert run.pg_url_for(ingest, "postgresql://postgres@127.0.0.1:5432/innkeeper_bench") == (
        "postgresql://postgres@127.0.0.1:5432/innkeeper_bench_ingest_postgres"
    )
    assert run.pg_url_for(ingest, "postgresql://u:p@db:5433/bench?sslmode=disable") == (
        "postgresql://u:p@db:5433/bench_ingest_postgres?sslmode=disable"
    )


def test_a_missing_script_is_not_run_and_not_a_crash(scripts: Path) -> None:
    outcome = run.run_scenario(_scenario("absent.py"), quick=True, timeout=60, pg_base=run.DEFAULT_PG, echo=False)
    assert outcome.status == "missing"
    assert outcome.detail == "not run: script missing"
    assert not outcome.crashed


def test_a_script_that_reports_is_ok_and_gets_quick(scripts: Path) -> None:
    _write(
        scripts,
        "good.py",
        "import sys\nfrom _results import Result, emit\n"
        "print('working', sys.argv[1:])\n"
        "emit([Result('demo-sqlite', 'p99', 30.0, 'ms', target=25, comparison='<=')], quick='--quick' in sys.argv)\n",
    )
    outcome = run.run_scenario(_scenario("good.py"), quick=True, timeout=60, pg_base=run.DEFAULT_PG, echo=False)
    assert outcome.status == "ok", outcome.detail
    assert outcome.exit_code == 0
    assert outcome.command[-1] == "--quick"
    assert [(r.metric, r.passed) for r in outcome.results] == [("p99", False)]  # a miss is not a crash
    assert not outcome.crashed
    assert outcome.log is not None
    assert "working ['--quick']" in outcome.log.read_text()


def test_a_non_zero_exit_or_no_result_line_is_a_crash(scripts: Path) -> None:
    _write(
        scripts,
        "lost.py",
        "import sys\nfrom _results import Result, emit\n"
        "emit([Result('demo-sqlite', 'lost acknowledged events', 3, 'events', target=0, comparison='<=')])\n"
        "sys.exit(1)\n",
    )
    _write(scripts, "silent.py", "print('no result line')\n")
    _write(scripts, "slow.py", "import time\ntime.sleep(30)\n")
    lost = run.run_scenario(_scenario("lost.py"), quick=False, timeout=60, pg_base=run.DEFAULT_PG, echo=False)
    assert lost.status == "failed"
    assert lost.crashed
    assert [r.value for r in lost.results] == [3]  # what it measured still shows
    silent = run.run_scenario(_scenario("silent.py"), quick=False, timeout=60, pg_base=run.DEFAULT_PG, echo=False)
    assert silent.status == "crashed"
    assert "no BENCH_RESULT line" in silent.detail
    slow = run.run_scenario(_scenario("slow.py"), quick=False, timeout=1, pg_base=run.DEFAULT_PG, echo=False)
    assert slow.status == "timeout"
    assert slow.crashed


def test_main_writes_the_json_and_exits_zero_unless_a_scenario_crashed(
    scripts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        scripts,
        "good.py",
        "from _results import Result, emit\n"
        "emit([Result('demo-sqlite', 'p99', 30.0, 'ms', target=25, comparison='<=')])\n",
    )
    monkeypatch.setattr(run, "SCENARIOS", (_scenario("good.py"), _scenario("absent.py", "later-sqlite")))
    probe = _machine.probe
    monkeypatch.setattr(_machine, "probe", lambda **_: probe(seconds=0.05, directory=scripts, additions=10_000))
    out = scripts / "latest.json"
    assert run.main(["--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["quick"] is False
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["probe"]["fdatasync"]["syncs"] > 0
    assert data["machine"]["probe"]["cpu_loop_10m_s"] > 0
    assert data["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert [(s["id"], s["status"]) for s in data["scenarios"]] == [("demo-sqlite", "ok"), ("later-sqlite", "missing")]
    assert data["table"][0]["pass/miss"] == "MISS"
    assert data["crashed"] == []
    printed = capsys.readouterr().out
    assert "not run: script missing" in printed

    _write(scripts, "good.py", "raise SystemExit(2)\n")
    assert run.main(["--json", str(out), "--quick"]) == 1
    assert json.loads(out.read_text())["crashed"] == ["demo-sqlite"]


def test_the_machine_probe_times_real_syncs_and_counts_the_stalls(tmp_path: Path) -> None:
    latencies = _machine.sync_latencies(0.1, tmp_path)
    assert latencies and all(ms > 0 for ms in latencies)
    assert list(tmp_path.iterdir()) == []  # its file is gone
    profile = _machine.sync_profile([0.5] * 97 + [31.0, 45.0, 200.0], seconds=30)
    assert profile == {
        "syncs": 100,
        "p50_ms": 0.5,
        "p99_ms": 45.0,
        "max_ms": 200.0,
        "stalls_over_30ms_per_minute": 6.0,
    }
    line = _machine.describe({"cpu_loop_10m_s": 0.68, "fdatasync": {"dir": str(tmp_path), **profile}})
    assert "0.68 s" in line and "max 200 ms" in line and "6 stalls over 30 ms a minute" in line
