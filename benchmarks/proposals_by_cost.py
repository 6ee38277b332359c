"""Proposals by what they buy: `SL(model)` making as many of its 32 proposals as pay after warmup,
against making all 32 (``adaptation.PROPOSALS_BY_COST``), with NUTS in the same `compare` call.

Each case of the suite named on the command line runs twice, each time in a fresh process (one
`slppl.compare` of NUTS and `SL(model)`, the suite's sizes: 4 chains x (1000 + 1000), parallel,
float64, seed 0): once with the choice by cost, once with every proposal made. The table has the
suite's columns plus the proposals made per global move after warmup (per chain).

Run: ``python benchmarks/proposals_by_cost.py [--quick] [CASE ...]``; writes
``benchmarks/results/proposals_by_cost.md``.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEFAULT_CASES = ("eight schools (non-centred)", "German credit", "two modes, d = 10", "label switching")


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
        for by_cost in (True, False):
            label = f"SL(model), {'by cost' if by_cost else 'all 32'}"
            lines += ["| " + " | ".join(r) + " |"
                      for r in variants.rows(name, {"PROPOSALS_BY_COST": by_cost}, label, args.quick)]
            print("\n".join(lines[-2:]), flush=True)
    sizes = "2 chains x (200 + 300)" if args.quick else "4 chains x (1000 + 1000)"
    write_result("proposals_by_cost" + ("_quick" if args.quick else "") + ".md",
                 ["# Proposals by what they buy (`proposals_by_cost.py`)", "",
                  f"{environment(numpyro=numpyro.__version__)}; {sizes}, parallel, seed 0; each pair of rows is one "
                  "`compare` call in its own process; `proposals made`: per global move after warmup, per chain.", ""]
                 + lines)


if __name__ == "__main__":
    main()
