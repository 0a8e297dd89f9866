"""``make bench``: clearing end to end at four market sizes, and the Pyomo overhead.

For each size (bids x sites x hours) a market is made from the W27 dataset and cleared with
``Round(market, options).clear(...)`` exactly as :func:`optim.clearing.clear` does; the wall
time around the ``Round`` constructor and ``clear`` is the end-to-end figure. The same model
is then built straight from arrays with :func:`optim.solver.raw_highs_build` (highspy, no
Pyomo) and the Pyomo build + hand-over is reported as a ratio to it, measured in the same
run. Machines are shared and noisy, and every figure comes from one run: compare ratios and
orders of magnitude, not single seconds. The search's result moves from run to run too (at
L280 its welfare spread over 1,246,164 to 1,264,986 EUR in three runs with seed 0: which
neighbourhood result comes in first, and where HiGHS's time limit stops each, depend on
the machine's timing):
``--seeds 0,1,2`` clears each size once per seed and prints the spread of the gap. The
issue's targets for L and XL are printed as plain-text checks ("holds" / "does not hold");
nothing here asserts or fails.

    .venv/bin/python tests/benchmarks/bench_clear.py --sizes S,M --time-limit-scale 0.5
    .venv/bin/python tests/benchmarks/bench_clear.py --sizes L280 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gridbridge.market import MakerOptions, make_market  # noqa: E402
from optim.check import check_clearing  # noqa: E402
from optim.clearing import BASELINES, Round  # noqa: E402
from optim.formulation import formulate  # noqa: E402
from optim.model import build_model  # noqa: E402
from optim.options import MAX_SEED, USABLE, SolveOptions, SolveStatus  # noqa: E402
from optim.solver import PyomoHighs, raw_highs_build  # noqa: E402

DATASET = ROOT / "datasets" / "bridge-2023"
WEEK = "2023-W27"
THREADS = 2
PHASES = ("candidates", "baselines", "bound", "warm_start", "build", "handover", "solve",
          "extract", "reasons", "pricing")


@dataclass(frozen=True, slots=True)
class Size:
    name: str
    bids: int
    sites: int
    hours: int
    time_limit_s: float  # HiGHS's time limit before --time-limit-scale


SIZES = {s.name: s for s in (
    Size("S", 50, 6, 48, 30.0),
    Size("M", 500, 12, 168, 60.0),
    Size("L", 2_000, 16, 168, 60.0),
    # The floor at L (<= 300 s end to end, gap <= 5 %): the longest time limit that
    # ends within 300 s (measured: --time-limit 290 took 292.8 s end to end).
    Size("L280", 2_000, 16, 168, 280.0),
    Size("XL", 10_000, 32, 336, 300.0),
)}


def run_size(size: Size, scale: float, seed: int = 0, whole: bool = True) -> dict[str, Any]:
    """Make the market, clear it end to end with search seed ``seed``, then (``whole``) time
    the raw highspy build of its model. The market is the same for every seed (its own seed
    is 1): only the clearing's random choices change."""
    started = time.perf_counter()
    market = make_market(DATASET, MakerOptions(week=WEEK, bids=size.bids, sites=size.sites,
                                               hours=size.hours, seed=1))
    make_s = time.perf_counter() - started

    opts = SolveOptions(time_limit_s=size.time_limit_s * scale, threads=THREADS, seed=seed)
    started = time.perf_counter()
    rnd = Round(market, opts)
    clearing = rnd.clear(opts.carbon_price_eur_per_t, opts.emissions_cap_kg)
    wall_s = time.perf_counter() - started

    summary = clearing.summary()
    # Every benchmarked clearing is re-verified from scratch by the independent checker.
    started = time.perf_counter()
    check = check_clearing(market, clearing.placements, clearing.rejected, summary,
                           clearing.prices)
    check_s = time.perf_counter() - started
    timings = clearing.timings()
    seconds = {p: float(timings.get(f"{p}_s", 0.0)) for p in PHASES}
    pyomo_s = seconds["build"] + seconds["handover"]

    # The whole model of the market (every profitable candidate), built both ways in this
    # run: through Pyomo into HiGHS, and straight from arrays with highspy. For markets that
    # clear() solves as one model this is exactly its model; for larger ones it is the model
    # neighbourhood search avoids building. XL's is skipped (tens of millions
    # of non-zeros).
    formulate_s = raw_s = whole_pyomo_s = float("nan")
    whole_nnz = 0
    if whole and size.name not in ("XL", "L280"):  # L280's model is L's, built in the L run
        price = clearing.carbon_price_eur_per_t
        started = time.perf_counter()
        positive = np.flatnonzero(rnd.cands.net_eur(price) > 0)
        f = formulate(rnd.cands.subset(positive), rnd.arrays, opts.emissions_cap_kg)
        formulate_s = time.perf_counter() - started
        whole_nnz = f.nonzeros
        highs, raw_s = raw_highs_build(f, price)
        del highs
        started = time.perf_counter()
        held = PyomoHighs(build_model(f, price), opts, 1.0, 0.01)
        whole_pyomo_s = time.perf_counter() - started + formulate_s
        del held, f
    del rnd

    model = summary["model"]
    assert isinstance(model, dict)
    baselines = summary["baselines"]
    assert isinstance(baselines, dict)
    report = clearing.report
    return {
        "size": size.name, "seed": seed, "whole_timed": whole,
        "bids": size.bids, "sites": size.sites, "hours": size.hours,
        "time_limit_s": opts.time_limit_s, "threads": THREADS,
        "make_market_s": make_s,
        "candidates": model["candidates"], "variables": model["variables"],
        "constraints": model["constraints"], "nonzeros": model["nonzeros"],
        "restricted": bool(report.restrictions),
        "seconds": seconds,
        "wall_s": wall_s,
        "pyomo_s": pyomo_s,
        "pyomo_share": pyomo_s / wall_s if wall_s > 0 else 0.0,
        "pricing": summary["pricing"],
        "status": report.status.value,
        "feasible": report.status in USABLE and report.status is not SolveStatus.EMPTY,
        "highs_status": report.highs_status,
        "gap_pct": 100.0 * report.gap,
        "warm_start": report.warm_start,
        "welfare_eur": summary["welfare_eur"],
        "emissions_kg": summary["emissions_kg"],
        "kg_per_work_h": summary["kg_per_work_h"],
        "baselines": {name: {k: baselines[name][k] for k in
                             ("welfare_eur", "emissions_kg", "kg_per_work_h")}
                      for name in BASELINES if name in baselines},
        "bound_eur": clearing.report.bound_eur,
        "method": clearing.report.method,
        "checked": "ok" if check.ok else f"FAILED: {check.problems[0]}",
        "check_s": check_s,
        "whole_nonzeros": whole_nnz,
        "whole_pyomo_s": whole_pyomo_s,
        "raw_formulate_s": formulate_s,
        "raw_highspy_s": raw_s,
        "pyomo_over_raw": whole_pyomo_s / raw_s if raw_s > 0 else float("nan"),
        "pyomo_over_formulate_raw": (whole_pyomo_s / (formulate_s + raw_s)
                                     if formulate_s + raw_s > 0 else float("inf")),
    }


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Print a plain, right-aligned text table (first column left-aligned)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:],
                                                               strict=True))])

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def label(r: dict[str, Any]) -> str:
    """The size's name, and the search seed when it is not the default 0."""
    return r["size"] if r["seed"] == 0 else f"{r['size']} seed {r['seed']}"


def dims(r: dict[str, Any]) -> str:
    return f"{label(r)} {r['bids']}x{r['sites']}x{r['hours']}"


def floor_held(r: dict[str, Any]) -> bool:
    """The issue's floor at L: a feasible clearing within 300 s wall at a gap of at most 5 %."""
    return bool(r["feasible"] and r["gap_pct"] <= 5.0 and r["wall_s"] <= 300.0)


def checks(r: dict[str, Any]) -> list[str]:
    """The issue's targets for L and XL, judged from this run's figures."""

    def verdict(ok: bool) -> str:
        return "holds" if ok else "does not hold"

    wall, gap, share = r["wall_s"], r["gap_pct"], r["pyomo_share"]
    measured = f"(measured: {wall:.1f} s wall, gap {gap:.3f} %, Pyomo share {100 * share:.1f} %)"
    share_line = (f"  Pyomo build+handover <= 25 % of wall: "
                  f"{verdict(share <= 0.25)} ({100 * share:.1f} %)")
    if r["size"].startswith("L"):
        return [
            f"{label(r)} targets {measured}",
            f"  target: gap <= 1 % within 60 s wall: "
            f"{verdict(r['feasible'] and gap <= 1.0 and wall <= 60.0)}",
            share_line,
            f"  floor: <= 300 s wall with gap <= 5 %: "
            f"{verdict(floor_held(r))}",
        ]
    if r["size"] == "XL":
        return [
            f"{label(r)} targets {measured}",
            f"  target: gap <= 2 % within 600 s wall: "
            f"{verdict(r['feasible'] and gap <= 2.0 and wall <= 600.0)}",
            share_line,
            f"  floor: feasible, gap reported: {verdict(r['feasible'])} "
            f"(status {r['status']}, gap {gap:.3f} %)",
        ]
    return []


def spread(results: list[dict[str, Any]]) -> list[str]:
    """For each size run more than once: the spread of its gap and in how many runs the
    floor held. Why: one run's gap at L moves by more than a point from run to run, even
    with one seed (see the module docstring)."""
    lines = []
    for name in dict.fromkeys(r["size"] for r in results):
        runs = [r for r in results if r["size"] == name]
        if len(runs) < 2:
            continue
        gaps = sorted(r["gap_pct"] for r in runs)
        welfare = [r["welfare_eur"] for r in runs]
        line = (f"{name} over {len(runs)} runs: gap {gaps[0]:.3f} / {np.median(gaps):.3f} / "
                f"{gaps[-1]:.3f} % (least / median / most), welfare {min(welfare):,.0f} to "
                f"{max(welfare):,.0f} EUR")
        if name.startswith("L"):
            held = sum(floor_held(r) for r in runs)
            line += f"; floor held in {held} of {len(runs)}"
        lines.append(line)
    return lines


def report(results: list[dict[str, Any]]) -> None:
    f0, f1, f2, f3 = "{:.0f}".format, "{:.1f}".format, "{:.2f}".format, "{:.3f}".format
    table("Model (what clear() handed to HiGHS)",
          ["size bids x sites x hours", "T limit s", "make mkt s", "candidates", "variables",
           "constraints", "nonzeros", "restricted"],
          [[dims(r), f1(r["time_limit_s"]), f2(r["make_market_s"]), str(r["candidates"]),
            str(r["variables"]), str(r["constraints"]), str(r["nonzeros"]),
            "yes" if r["restricted"] else "no"] for r in results])
    table("Seconds per phase (Clearing.timings()) and end-to-end wall (Round + clear)",
          ["size", *PHASES, "wall", "Pyomo share"],
          [[label(r), *(f3(r["seconds"][p]) for p in PHASES), f2(r["wall_s"]),
            f"{100 * r['pyomo_share']:.1f} %"] for r in results])
    table("Outcome",
          ["size", "status", "gap %", "bound_eur", "welfare_eur", "emissions_kg",
           "kg_per_work_h", "method", "checker"],
          [[label(r), r["status"], f3(r["gap_pct"]), f0(r["bound_eur"]), f0(r["welfare_eur"]),
            f1(r["emissions_kg"]), f3(r["kg_per_work_h"]), r["method"],
            f"{r['checked']} ({r['check_s']:.1f} s)"] for r in results])
    table("Baselines (Clearing.summary()['baselines'])",
          ["size", "baseline", "welfare_eur", "emissions_kg", "kg_per_work_h",
           "welfare vs clear"],
          [[label(r), name, f0(b["welfare_eur"]), f1(b["emissions_kg"]),
            f3(b["kg_per_work_h"]),
            f3(b["welfare_eur"] / r["welfare_eur"]) if r["welfare_eur"] else "-"]
           for r in results for name, b in r["baselines"].items()])
    table("Pricing: LP relaxation by column generation (optim.pricing), part of the wall",
          ["size", "pricing s", "share of wall", "LP objective EUR", "converged", "iterations",
           "columns", "payments EUR", "uplift EUR", "paradoxical bids"],
          [[label(r), f2(r["seconds"]["pricing"]),
            f"{100 * r['seconds']['pricing'] / r['wall_s']:.1f} %",
            f0(r["pricing"]["lp_objective_eur"]), str(r["pricing"]["converged"]),
            str(r["pricing"]["iterations"]), str(r["pricing"]["columns"]),
            f0(r["pricing"]["payments_eur"]), f0(r["pricing"]["uplift_eur"]),
            str(r["pricing"]["paradoxically_rejected"])] for r in results])
    table("Whole model of every profitable candidate: Pyomo vs raw highspy (same run)",
          ["size", "non-zeros", "Pyomo build+handover s", "formulate s", "raw highspy s",
           "Pyomo / raw highspy", "Pyomo / (formulate + raw)"],
          [[label(r), f"{r['whole_nonzeros']:,}", f3(r["whole_pyomo_s"]),
            f3(r["raw_formulate_s"]), f3(r["raw_highspy_s"]), f1(r["pyomo_over_raw"]),
            f1(r["pyomo_over_formulate_raw"])] for r in results if r["whole_timed"]])
    print("  (Pyomo's figure includes formulate(); XL and L280 (L's model) are not built. "
          "clear() builds this model only up to 250,000 non-zeros, and neighbourhood models "
          "above.)")
    lines = [line for r in results for line in checks(r)] + spread(results)
    print("\nIssue targets")
    print("\n".join(lines) if lines else "  (only checked for L and XL; neither was run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help="comma-separated sizes to run, of S,M,L,XL (default: all)")
    parser.add_argument("--time-limit-scale", type=float, default=1.0,
                        help="multiplies each size's HiGHS time limit "
                             "(S 30 s, M 60 s, L 60 s, L280 280 s, XL 300 s; "
                             "default 1.0)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated search seeds; each size is cleared once per seed "
                             "and the spread is printed (default: 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    args = parser.parse_args()
    names = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    unknown = [n for n in names if n not in SIZES]
    if unknown or not names:
        parser.error(f"--sizes takes names from {','.join(SIZES)}, got {args.sizes!r}")
    if not args.time_limit_scale > 0:
        parser.error("--time-limit-scale must be > 0")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        parser.error(f"--seeds takes integers from 0 to {MAX_SEED}, got {args.seeds!r}")

    print(f"bench_clear: {os.cpu_count()} CPUs ({platform.machine()}, Python "
          f"{platform.python_version()}), HiGHS threads={THREADS}, "
          f"time-limit scale {args.time_limit_scale:g}")
    print("All figures are from one run on a shared machine: read ratios, not single seconds.")
    results = []
    for name in names:
        size = SIZES[name]
        for seed in seeds:
            print(f"... {name}: {size.bids} bids x {size.sites} sites x {size.hours} h, "
                  f"time limit {size.time_limit_s * args.time_limit_scale:g} s, seed {seed}",
                  flush=True)
            r = run_size(size, args.time_limit_scale, seed, whole=seed == seeds[0])
            print(f"    done: {r['wall_s']:.1f} s wall, {r['status']}, gap {r['gap_pct']:.3f} %",
                  flush=True)
            results.append(r)
    report(results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "threads": THREADS,
            "time_limit_scale": args.time_limit_scale, "seeds": seeds, "results": results,
        }, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
