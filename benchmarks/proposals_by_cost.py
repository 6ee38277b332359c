"""Proposals by what they buy: `SL(model)` making as many of its 32 proposals as pay after warmup,
against making all 32 (``adaptation.PROPOSALS_BY_COST``), with NUTS in the same `compare` call.

Each case of the suite named on the command line runs twice, each time in a fresh process (one
`slppl.compare` of NUTS and `SL(model)`, the suite's sizes: 4 chains x (1000 + 1000), parallel,
float64, seed 0): once with the choice by cost, once with every proposal made. The table has the
suite's columns plus the proposals made per global move after warmup (per chain).

Run: ``python benchmarks/proposals_by_cost.py [--quick] [CASE ...]``; writes
``benchmarks/results/proposals_by_cost.md``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEFAULT_CASES = ("eight schools (non-centred)", "German credit", "two modes, d = 10", "label switching")


def main():
    import variants

    variants.study("proposals_by_cost", "Proposals by what they buy",
                   [(f"SL(model), {'by cost' if by_cost else 'all 32'}", {"PROPOSALS_BY_COST": by_cost}) for by_cost in (True, False)],
                   __doc__.splitlines()[0], DEFAULT_CASES)


if __name__ == "__main__":
    main()
