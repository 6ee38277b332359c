"""Mode-weight error, acceptance and ESS per second of SL against NUTS, measured in one run.

Runs the demo (``examples/bimodal_gmm.py``) at benchmark size: 4 chains x (1000 warmup + 5000
draws) for both samplers, each timed on a second, compiled run. Writes
``benchmarks/results/bimodal_vs_nuts.md`` (and the PNG beside it).

Run: ``python benchmarks/bimodal_vs_nuts.py [--num-steps 50] [--chain-method parallel]``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import bimodal_gmm  # noqa: E402


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    out = os.path.join(HERE, "results")
    report = bimodal_gmm.main(["--num-warmup", "1000", "--num-samples", "5000", "--out", out,
                               "--no-progress-bar", *argv])
    with open(os.path.join(out, "bimodal_vs_nuts.md"), "w") as f:
        f.write(report + "\n\n![traces](bimodal_gmm.png)\n")
    os.remove(os.path.join(out, "bimodal_gmm.md"))


if __name__ == "__main__":
    main()
