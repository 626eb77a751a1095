"""False-alarm and detection rates of the whole alert system, by simulation.

    .venv/bin/python bench/alerts.py [--seeds 200] [--volumes 5 30 100] [--dims 4] [--workers 2] [--looks upload]

Each seed is one product made by 5 nodes for 12 + 13 weeks (a full alert window, then a quarter), generated
in-control (``qc.alarms.simulate``: node volumes lognormal around the median ``volume`` units a week, weekly
sizes Poisson, so weeks of a handful of units and partial current weeks occur; measurements normal with a
node offset; defects binomial at 3 %). The alert rules of ``qc.alarms`` — the functions the service calls —
run after every upload of the quarter, partial weeks included, and every distinct alert the service would
store is counted. Targets (issue 14): on average <= 1 false alert per node and product per quarter; a
1.5 sigma shift in one dimension, and a doubling of one node's defect rate, flagged within 3 weeks of its
start in >= 90 % of seeds (each seed's shift starts at the quarter's first week, in node 0).

Detection depends on volume (a node making 5 units a week cannot show a doubled 3 % defect rate within
3 weeks: it expects under one defective in that time), so each figure is printed per volume.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qc import alarms  # noqa: E402


def _one(job: tuple[str, int, float, int, str]) -> alarms.SimResult:
    kind, seed, volume, dims, looks = job
    if kind == "mean":
        return alarms.simulate(seed, volume=volume, dims=dims, looks=looks, mean_shift=1.5)
    if kind == "rate":
        return alarms.simulate(seed, volume=volume, dims=dims, looks=looks, rate_factor=2.0)
    return alarms.simulate(seed, volume=volume, dims=dims, looks=looks)


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion."""
    if not n:
        return 0.0, 1.0
    z, p = 1.96, k / n
    mid, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (
        1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--volumes", type=float, nargs="+", default=[5.0, 30.0, 100.0])
    ap.add_argument("--dims", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--looks", choices=["upload", "geometric"], default="geometric")
    args = ap.parse_args()
    t0 = time.perf_counter()
    when = "every upload" if args.looks == "upload" else "each of a week's first 10 uploads, then every ~10 % more"
    print(f"{args.seeds} seeds x 5 nodes x {args.dims} dimensions, 12 + 13 weeks, rules judged after {when}; "
          f"L = {alarms.mean_limit(args.dims):.2f} sigma for {args.dims} dimensions (more with a short baseline)")
    print(f"{'volume':>7} {'false alerts / node-product-quarter (by rule)':<62} {'1.5 sigma shift':>16} "
          f"{'defect rate x2':>16}")
    with ProcessPoolExecutor(args.workers) as pool:
        for volume in args.volumes:
            jobs = [(kind, 1_000_003 * k + seed, volume, args.dims, args.looks)
                    for k, kind in enumerate(("null", "mean", "rate")) for seed in range(args.seeds)]
            results = list(pool.map(_one, jobs, chunksize=4))
            null = results[:args.seeds]
            quarters = sum(r.node_quarters for r in null)
            by_rule: dict[str, int] = {}
            for r in null:
                for rule, c in r.false_alerts.items():
                    by_rule[rule] = by_rule.get(rule, 0) + c
            rate = sum(by_rule.values()) / quarters
            rules = ", ".join(f"{k} {v / quarters:.2f}" for k, v in sorted(by_rule.items()))
            se = math.sqrt(sum(by_rule.values())) / quarters  # Poisson count
            mean_hits = sum(bool(r.mean_detected) for r in results[args.seeds:2 * args.seeds])
            rate_hits = sum(bool(r.rate_detected) for r in results[2 * args.seeds:])
            lo_m, _ = _wilson(mean_hits, args.seeds)
            lo_r, _ = _wilson(rate_hits, args.seeds)
            print(f"{volume:>7.0f} {rate:.2f} ± {se:.2f} ({rules})".ljust(71)
                  + f"{mean_hits / args.seeds:>8.1%} (≥{lo_m:.0%}) {rate_hits / args.seeds:>7.1%} (≥{lo_r:.0%})",
                  flush=True)
    print(f"targets: false alerts <= 1.00 per node-product-quarter; detection within 3 weeks >= 90 % "
          f"(in brackets: the 95 % Wilson lower bound); {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
