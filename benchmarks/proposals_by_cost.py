"""Proposals by what they buy: `SL(model)` making as many of its 32 proposals as pay after warmup,
against making all 32 (``adaptation.PROPOSALS_BY_COST``), with NUTS in the same `compare` call.

Each case of the suite named on the command line runs twice, each time in a fresh process (one
`slppl.compare` of NUTS and `SL(model)`, the suite's sizes: 4 chains x (1000 + 1000), parallel,
float64, seed 0): once with the choice by cost (the default), once with every proposal made. The
table has the suite's columns plus the proposals made per global move after warmup (per chain).

Run: ``python benchmarks/proposals_by_cost.py [--quick] [CASE ...]``; writes
``benchmarks/results/proposals_by_cost.md``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = ("eight schools (non-centred)", "German credit", "two modes, d = 10", "label switching")


def child(name, by_cost, quick, out):
    sys.path.insert(0, HERE)
    import numpy as np
    import suite  # sets the host device count and float64 before JAX starts

    from slppl import adaptation

    adaptation.PROPOSALS_BY_COST = by_cost
    case = next(c for c in suite.cases.reference_cases() + suite.cases.multimodal_cases() if c.name.startswith(name))
    sizes = suite.QUICK if quick else suite.FULL
    samplers = {"NUTS": suite.NUTS(case.model), "SL(model)": suite.SL(case.model)}
    result = suite.compare(suite.jax.random.PRNGKey(0), case.model, *case.args, samplers=samplers,
                           reference=case.reference, modes=case.modes, **sizes)
    rows = suite._cell_rows(case, result)
    lw = np.asarray(result.runs["SL(model)"].fields["proposal_log_weight"])
    made = (~np.isnan(lw)).sum(-1).reshape(sizes["num_chains"], -1)[:, -1]
    rows[1][1] = f"SL(model), {'by cost' if by_cost else 'all 32'}"
    rows[1].append("/".join(str(int(k)) for k in made))
    rows[0].append("")
    with open(out, "w") as f:
        json.dump(rows, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, by_cost, out = args.child
        return child(name, by_cost == "1", args.quick, out)
    sys.path.insert(0, HERE)
    from report import environment, write_result

    header = ["case", "sampler", "max z / sd ratio", "max mode error (in MCSE)", "min ESS", "max R-hat", "div.",
              "wall s", "compile s", "ESS/s", "ESS/s vs NUTS", "ESS / 1k evals", "global accept", "max k̂",
              "proposals made"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in args.cases:
        for by_cost in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "rows.json")
                cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "1" if by_cost else "0", out]
                subprocess.run(cmd + (["--quick"] if args.quick else []), check=True)
                with open(out) as f:
                    rows = json.load(f)
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            print("\n".join(lines[-2:]), flush=True)
    import numpyro

    sizes = "2 chains x (200 + 300)" if args.quick else "4 chains x (1000 + 1000)"
    write_result("proposals_by_cost" + ("_quick" if args.quick else "") + ".md",
                 ["# Proposals by what they buy (`proposals_by_cost.py`)", "",
                  f"{environment(numpyro=numpyro.__version__)}; {sizes}, parallel, seed 0; each pair of rows is one "
                  "`compare` call in its own process; `proposals made`: per global move after warmup, per chain.", ""]
                 + lines)

if __name__ == "__main__":
    main()
