"""How much exploration `SL(model)` needs: the walkers' share of warmup (``adaptation.EXPLORE_SHARE``,
default 1/4) against 1/8 and 1/16 (at least ``MIN_EXPLORE`` = 50 steps), NUTS in the same run.

Each (case, share) is one `slppl.compare` of NUTS and `SL(model)` in a fresh process, the suite's
sizes (4 chains x (1000 + 1000), parallel, float64, seed 0). The walkers' 16 x 250 NUTS steps are
most of a default run's model evaluations; this measures what a shorter exploration costs in
accuracy, acceptance and effective draws, for issue 17's "explore until the fit is good".

Run: ``python benchmarks/explore_budget.py [--quick] [CASE ...]``; writes
``benchmarks/results/explore_budget.md``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEFAULT_CASES = ("eight schools (non-centred)", "German credit", "correlated Gaussian", "two modes, d = 10",
                 "two modes, d = 32", "label switching", "40 modes")
SHARES = (0.25, 0.125, 0.0625)


def main():
    import variants

    variants.study("explore_budget", "How much exploration `SL(model)` needs",
                   [(f"SL(model), explore {share:g} of warmup", {"EXPLORE_SHARE": share}) for share in SHARES],
                   __doc__.splitlines()[0], DEFAULT_CASES)


if __name__ == "__main__":
    main()
