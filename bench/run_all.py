"""Run every benchmark at one scale, save the results as JSON and draw the chart (`make bench`).

    BENCH_SCALE=1.0 .venv/bin/python -m bench.run_all          # the issue's full sizes (15 min on 2 Xeon cores)
    .venv/bin/python -m bench.run_all --only dispatch --only dlr

BENCH_SCALE (default bench.common.DEFAULT_SCALE) multiplies every benchmark's full size: 1,000,000 rows for
import, audience, dispatch and dlr, 100k vs 1M recipients for memory, 100,000 for naive. One throwaway
database serves the run (emptied between benchmarks); results go to bench/results/ (git-ignored) as
`<timestamp>.json` and `latest.json`, the chart to docs/img/benchmarks.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import bench_audience, bench_dispatch, bench_dlr, bench_import, bench_memory, bench_naive
from bench.common import (
    ROOT,
    bench_database,
    database_name,
    env_scale,
    finish,
    load_average,
    machine_facts,
    print_table,
    reset_data,
    scaled,
    server_facts,
    setup_django,
)

# name → (module, full size, smallest size worth running)
BENCHMARKS = {
    "import": (bench_import, bench_import.FULL, 20),
    "audience": (bench_audience, bench_audience.FULL, 20),
    "dispatch": (bench_dispatch, bench_dispatch.FULL, 20),
    "dlr": (bench_dlr, bench_dlr.FULL, 40),
    "memory": (bench_memory, bench_memory.FULL, 100),
    "naive": (bench_naive, bench_naive.FULL, 20),
}
RESULTS_DIR = ROOT / "bench" / "results"
CHART = ROOT / "docs" / "img" / "benchmarks.png"


def run_all(scale: float, names: list[str]) -> dict:
    report = {
        "scale": scale,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run_all", *sys.argv[1:]]),
        "machine": machine_facts(),
        "load_before": load_average(),
        "results": [],
        "errors": {},
    }
    with bench_database():
        report["database"] = database_name()
        report["server"] = server_facts()
        for name in names:
            module, full, minimum = BENCHMARKS[name]
            reset_data()
            started = time.perf_counter()
            try:
                result = module.run(rows=scaled(full, scale, minimum), scale=scale, args=None)
            except Exception:
                traceback.print_exc()
                report["errors"][name] = traceback.format_exc(limit=5)
                continue
            report["results"].append(finish(result, started).as_dict())
    report["load_after"] = load_average()
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def summary(report: dict) -> None:
    rows = []
    for result in report["results"]:
        for metric in result["metrics"]:
            if metric["headline"] or metric["met"] is not None:
                verdict = "" if metric["met"] is None else ("met" if metric["met"] else "MISSED")
                ratio = "" if metric["ratio"] is None else f"{metric['ratio']:.2f}×"
                rows.append([result["name"], metric["label"], metric["value"], metric["unit"],
                             "" if metric["floor"] is None else metric["floor"], ratio, metric["target"], verdict])  # fmt: skip
    print_table(["benchmark", "measure", "value", "unit", "floor", "ratio", "target", ""], rows,
                title=f"Summary — BENCH_SCALE={report['scale']:g}, load {report['load_before']} → {report['load_after']}")  # fmt: skip
    for name, error in report["errors"].items():
        print(f"\n{name} FAILED:\n{error}")


def render_chart(report: dict, path: Path) -> None:
    """Throughput of each benchmark against its floor (log scale), and the memory of the two campaign sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {r["name"]: r for r in report["results"]}
    rates = [(name, results[name]) for name in ("import", "audience", "dispatch", "dlr", "naive") if name in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [2.2, 1]})
    labels, values, floors, targets = [], [], [], []
    for name, result in rates:
        metric = next(m for m in result["metrics"] if m["headline"])
        labels.append(f"{name}\n{metric['unit']}")
        values.append(metric["value"])
        floors.append(metric["floor"] or 0)
        targets.append(_target_rate(name, metric))
    x = range(len(labels))
    width = 0.38
    herald = left.bar([i - width / 2 for i in x], values, width, label="Herald", color="#2b6cb0")
    floor = left.bar(
        [i + width / 2 for i in x], floors, width, label="floor (Herald's engine, for naive)", color="#a0aec0"
    )
    for i, target in enumerate(targets):
        if target:
            left.hlines(target, i - 0.45, i + 0.45, colors="#c53030", linestyles="dashed", linewidth=1.5,
                        label="target" if i == next(j for j, t in enumerate(targets) if t) else None)  # fmt: skip
    left.bar_label(herald, labels=[_short(v) for v in values], fontsize=8, padding=2)
    left.bar_label(floor, labels=[_short(v) if v else "" for v in floors], fontsize=8, padding=2)
    left.set_yscale("log")
    left.set_xticks(list(x), labels, fontsize=9)
    left.set_ylabel("rows, recipients or reports per second (log)")
    left.set_title("Throughput against the floor")
    left.legend(fontsize=8, loc="upper right")

    if "memory" in results:
        details = results["memory"]["details"]
        small, large = details["small"], details["large"]
        roles = ["worker", "web"]
        xs = range(len(roles))
        a = right.bar([i - width / 2 for i in xs], [small[f"{r}_peak_mb"] for r in roles], width,
                      label=f"{small['recipients']:,} recipients", color="#a0aec0")  # fmt: skip
        b = right.bar([i + width / 2 for i in xs], [large[f"{r}_peak_mb"] for r in roles], width,
                      label=f"{large['recipients']:,} recipients", color="#2b6cb0")  # fmt: skip
        right.bar_label(a, fmt="%.0f", fontsize=8, padding=2)
        right.bar_label(b, fmt="%.0f", fontsize=8, padding=2)
        right.set_xticks(list(xs), ["worker process", "web process"])
        right.set_ylabel("peak RSS, MB (largest process)")
        right.set_title("Memory: small vs large campaign")
        right.legend(fontsize=8, loc="lower right")
    machine = report["machine"]
    figure.suptitle(
        f"Herald benchmarks — BENCH_SCALE={report['scale']:g}, {machine['cpu']} × {machine['cores']} cores, "
        f"PostgreSQL {report.get('server', {}).get('postgresql', '?')}, {report['started_at'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _target_rate(name: str, metric: dict) -> float | None:
    """The target as a rate on the chart's axis, where the target is one."""
    if name == "import":
        return bench_import.TARGET_RATE
    if name == "dispatch":
        return bench_dispatch.TARGET_RATE
    if name == "dlr":
        return bench_dlr.TARGET_RATE
    if name == "audience" and metric["floor"]:
        return metric["floor"] / bench_audience.TARGET_RATIO  # at most 2× the floor's time
    return None


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.0f}k" if value >= 10_000 else f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=None, help="default: BENCH_SCALE or bench.common.DEFAULT_SCALE")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run only these (repeatable)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="directory for the JSON results")
    parser.add_argument("--chart", default=str(CHART), help="where to draw the chart ('' for none)")
    args = parser.parse_args()
    scale = args.scale if args.scale is not None else env_scale()
    names = args.only or list(BENCHMARKS)
    setup_django()
    started = time.perf_counter()
    report = run_all(scale, names)
    report["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for target in (out / f"{stamp}.json", out / "latest.json"):
        target.write_text(json.dumps(report, indent=2, default=str))
    if args.chart and report["results"]:
        render_chart(report, Path(args.chart))
        print(f"\nchart: {args.chart}")
    summary(report)
    print(f"\nresults: {out / f'{stamp}.json'} ({report['seconds']:.0f} s)")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
