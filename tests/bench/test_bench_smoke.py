"""Every benchmark at a tiny scale, so that none can rot: `bench.run_all` in a subprocess, as `make bench` runs it.

No timing is asserted (performance is measured in bench/, DESIGN §6): each benchmark must print its table and
write positive figures to the JSON, the chart must be drawn, and nothing may be left behind (the throwaway
database, the worker and web processes).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.bench_import import GROWTH

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = {"import", "audience", "dispatch", "dlr", "memory", "naive"}

pytestmark = pytest.mark.worker


def _databases() -> set[str]:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def _processes_on(database: str) -> list[int]:
    """Processes whose DATABASE_URL names `database` (our workers and gunicorn would)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("DATABASE_URL", "").split("?")[0].endswith(f"/{database}"):
                found.append(process.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_every_benchmark_runs_at_a_tiny_scale_and_cleans_up(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_SCALE", "HERALD_TEST_DATABASE")}
    chart = tmp_path / "benchmarks.png"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--scale", "0.0003", "--out", str(tmp_path), "--chart", str(chart)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["errors"] == {}
    assert {r["name"] for r in report["results"]} == BENCHMARKS
    for result in report["results"]:
        assert result["metrics"], f"{result['name']} measured nothing"
        assert any(m["headline"] for m in result["metrics"]), f"{result['name']} has no headline figure"
        for metric in result["metrics"]:
            growth = metric["unit"] == GROWTH  # a memory growth may be nil at this size
            assert metric["value"] > 0 or growth, f"{result['name']}: {metric['label']} = {metric['value']}"
            if metric["floor"] is not None:
                assert metric["floor"] > 0 and (metric["ratio"] > 0 or growth), f"{result['name']}: {metric['label']}"
        assert result["title"] in completed.stdout, f"{result['name']} printed no table"
    assert "Summary" in completed.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert report["database"] not in _databases(), "the benchmark database was left behind"
    assert _processes_on(report["database"]) == [], "worker or web processes were left running"


def test_a_benchmark_measures_a_schema_variant_given_on_the_command_line(tmp_path):
    """`--drop` and `--sql` change the throwaway database's schema before the run, and the result says so."""
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_SCALE", "HERALD_TEST_DATABASE")}
    statement = "ALTER TABLE campaigns_message SET (fillfactor = 50)"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_audience", "--rows", "200", "--json", str(tmp_path / "variant.json"),
         "--drop", "message_account_address_idx", "--sql", statement],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    notes = json.loads((tmp_path / "variant.json").read_text())["notes"]
    assert "schema variant: without message_account_address_idx" in notes
    assert f"schema variant: {statement}" in notes


def test_the_export_benchmark_reads_every_message_and_cleans_up(tmp_path):
    """`bench.bench_export` (not one of the six `make bench` runs): the export read to the end against its floor."""
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_SCALE", "HERALD_TEST_DATABASE")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_export", "--rows", "120", "--json", str(tmp_path / "export.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((tmp_path / "export.json").read_text())
    [headline] = [metric for metric in report["metrics"] if metric["headline"]]
    assert headline["value"] > 0 and headline["floor"] > 0
    assert report["details"]["export_bytes"] > report["details"]["floor_bytes"] > 0  # the meanings column more
    assert "120 messages" in completed.stdout
    assert report["details"]["database"] not in _databases(), "the benchmark database was left behind"
