"""How much exploration `SL(model)` needs: the walkers' share of warmup (``adaptation.EXPLORE_SHARE``,
default 1/4) against 1/8 and 1/16 (at least ``MIN_EXPLORE`` = 50 steps), NUTS in the same run.

Each (case, share) is one `slppl.compare` of NUTS and `SL(model)` in a fresh process, the suite's
sizes (4 chains x (1000 + 1000), parallel, float64, seed 0). The walkers' 16 x 250 NUTS steps are
most of a default run's model evaluations; this measures what a shorter exploration costs in
accuracy, acceptance and effective draws, for issue 17's "explore until the fit is good".

Run: ``python benchmarks/explore_budget.py [--quick] [CASE ...]``; writes
``benchmarks/results/explore_budget.md``.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEFAULT_CASES = ("eight schools (non-centred)", "German credit", "two modes, d = 10", "label switching")
SHARES = (0.25, 0.125, 0.0625)


def main():
    import numpyro

    import variants
    from report import environment, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lines = ["| " + " | ".join(variants.HEADER) + " |", "|" + "---|" * len(variants.HEADER)]
    for name in args.cases:
        for share in SHARES:
            label = f"SL(model), explore {share:g} of warmup"
            lines += ["| " + " | ".join(r) + " |" for r in variants.rows(name, {"EXPLORE_SHARE": share}, label, args.quick)]
            print("\n".join(lines[-2:]), flush=True)
    sizes = "2 chains x (200 + 300)" if args.quick else "4 chains x (1000 + 1000)"
    write_result("explore_budget" + ("_quick" if args.quick else "") + ".md",
                 ["# How much exploration `SL(model)` needs (`explore_budget.py`)", "",
                  f"{environment(numpyro=numpyro.__version__)}; {sizes}, parallel, seed 0; each pair of rows is one "
                  "`compare` call in its own process.", ""] + lines)


if __name__ == "__main__":
    main()
