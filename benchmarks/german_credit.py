"""SL with a Laplace denoiser vs NUTS on German credit (d = 25), judged against inference-gym's truth.

Runs ``examples/german_credit.py`` at 4 chains x (500 + 2000) and writes
``benchmarks/results/german_credit.md``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import german_credit  # noqa: E402

if __name__ == "__main__":
    german_credit.main(["--out", os.path.join(HERE, "results"), *sys.argv[1:]])
