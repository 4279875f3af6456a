#!/usr/bin/python3.11
"""Plots bench/results/executor.json (bench/executor.py) into
bench/results/executor.png with Debian's matplotlib:
  /usr/bin/python3.11 bench/executor_plot.py [results.json [out.png]]
One panel per benchmark: the median of each variant, with the spread of the
rounds (min to p90) as an error bar; the speed-ups of the CPU-bound map
against the 1.8x target."""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLOURS = {"pat.Executor": "#1f77b4", "ProcessPoolExecutor": "#d62728", "shared_memory by hand": "#ff7f0e",
           "ThreadPoolExecutor": "#2ca02c", "native threads (python3.11, outside pat)": "#98df8a"}


def _label(name):
    """Two lines at most, so that neighbouring labels do not overlap."""
    return (name.replace("PoolExecutor", "Pool\nExecutor").replace(" by hand", "\nby hand")
            .replace(" (python3.11, outside pat)", "\n(python3.11, no pat)"))


def bars(axis, title, unit, scale, variants):
    names = list(variants)
    medians = [variants[n]["median"] * scale for n in names]
    low = [m - variants[n]["min"] * scale for m, n in zip(medians, names)]
    high = [variants[n]["p90"] * scale - m for m, n in zip(medians, names)]
    axis.bar(range(len(names)), medians, yerr=[low, high], capsize=4,
             color=[COLOURS.get(n, "#7f7f7f") for n in names])
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels([_label(n) for n in names], fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel(unit)
    axis.set_title(title, fontsize=10)
    for x, m in enumerate(medians):
        axis.annotate(f"{m:.3g}", (x, m), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                      textcoords="offset points")


def main():
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "executor.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else RESULTS / "executor.png"
    document = json.loads(source.read_text())
    member = document["results"]["member"]
    native = document["results"]["native"]
    verdicts = document["results"]["verdicts"]
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    for axis, bench, title, unit, scale in (
            (axes[0][0], "return", "1. a worker returns a 256 MiB array", "ms", 1e3),
            (axes[0][1], "argument", "2. a 256 MiB array to a worker that sums it", "ms", 1e3),
            (axes[1][0], "round_trip", "3. round trip of a trivial task", "µs", 1e6)):
        variants = dict(member[bench])
        if bench in native:
            variants["native threads (python3.11, outside pat)"] = native[bench]["native threads"]
        verdict = verdicts[bench]
        note = "met" if verdict["met"] else "NOT met"
        bars(axis, f"{title}\ntarget {verdict['target']}: {note}", unit, scale, variants)
    axis = axes[1][1]
    names = ["pat.Executor", "ProcessPoolExecutor", "ThreadPoolExecutor"]
    speedups = [member["cpu_map"][f"{n}, 1 worker"]["median"] / member["cpu_map"][f"{n}, 2 workers"]["median"]
                for n in names]
    axis.bar(range(len(names)), speedups, color=[COLOURS[n] for n in names])
    axis.axhline(1.8, color="black", linestyle="--", linewidth=1)
    axis.annotate("target 1.8x", (len(names) - 0.5, 1.8), ha="right", va="bottom", fontsize=8)
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels([_label(n) for n in names], fontsize=8)
    axis.set_ylabel("speed-up, 2 workers / 1")
    axis.set_ylim(0, 2.2)
    axis.set_title(f"4. CPU-bound map: {'met' if verdicts['cpu_map']['met'] else 'NOT met'}", fontsize=10)
    for x, value in enumerate(speedups):
        axis.annotate(f"{value:.2f}x", (x, value), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                      textcoords="offset points")
    machine = document["machine"]
    figure.suptitle(f"pat.Executor and its peers (medians of {document['parameters']['rounds']} interleaved rounds; "
                    f"caller is a member; {machine['cpus']} CPUs, Linux {machine['kernel']}, "
                    f"{machine['git_commit']}, {document['date']})", fontsize=10)
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    print(f"plot written to {target}")


if __name__ == "__main__":
    main()
