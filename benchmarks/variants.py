"""One `slppl.compare` of NUTS and `SL(model)` with some of `slppl.adaptation`'s settings changed,
in a fresh process (JAX's settings and compiled programs stay its own): the suite's table rows,
the SL row labelled, plus the proposals made per global move after warmup (per chain).

Used by `proposals_by_cost.py` and `explore_budget.py` (:func:`study`, their command line).
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def rows(case_name, settings, label, quick=False):
    """The two table rows (NUTS, then SL(model) named ``label``) of one run with ``settings``
    (``{name: value}`` set on :mod:`slppl.adaptation` before anything is built)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rows.json")
        job = json.dumps(dict(case=case_name, settings=settings, label=label, quick=quick, out=out))
        subprocess.run([sys.executable, os.path.abspath(__file__), job], check=True)
        with open(out) as f:
            return json.load(f)


def _child(job):
    sys.path.insert(0, HERE)
    import numpy as np
    import suite  # sets the host device count and float64 before JAX starts

    from slppl import adaptation

    for name, value in job["settings"].items():
        setattr(adaptation, name, value)
    case = next(c for c in suite.cases.reference_cases() + suite.cases.multimodal_cases()
                if c.name.startswith(job["case"]))
    sizes = suite.QUICK if job["quick"] else suite.FULL
    samplers = {"NUTS": suite.NUTS(case.model), "SL(model)": suite.SL(case.model)}
    result = suite.compare(suite.jax.random.PRNGKey(0), case.model, *case.args, samplers=samplers,
                           reference=case.reference, modes=case.modes, **sizes)
    table = suite._cell_rows(case, result)
    lw = np.asarray(result.runs["SL(model)"].fields["proposal_log_weight"])
    made = (~np.isnan(lw)).sum(-1).reshape(sizes["num_chains"], -1)[:, -1]
    table[1][1] = job["label"]
    table[1].append("/".join(str(int(k)) for k in made))
    table[0].append("")
    with open(job["out"], "w") as f:
        json.dump(table, f)


def study(name, title, variants, description, default_cases):
    """The command line of a study: for each case (``CASE ...`` arguments or ``default_cases``) and
    each ``(label, settings)`` of ``variants``, one :func:`rows`; the table goes to
    ``benchmarks/results/<name>.md`` (``<name>_quick.md`` with ``--quick``: 2 chains x (200 + 300))."""
    import argparse

    import numpyro

    from report import environment, write_result

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("cases", nargs="*", default=default_cases)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for case in args.cases:
        for label, settings in variants:
            lines += ["| " + " | ".join(r) + " |" for r in rows(case, settings, label, args.quick)]
            print("\n".join(lines[-2:]), flush=True)
    sizes = "2 chains x (200 + 300)" if args.quick else "4 chains x (1000 + 1000)"
    write_result(name + ("_quick" if args.quick else "") + ".md",
                 [f"# {title} (`{name}.py`)", "",
                  f"{environment(numpyro=numpyro.__version__)}; {sizes}, parallel, seed 0; each pair of rows is one "
                  "`compare` call in its own process; `proposals made`: per global move after warmup, per chain.", ""]
                 + lines)


HEADER = ["case", "sampler", "max z / sd ratio", "max mode error (in MCSE)", "min ESS", "max R-hat", "div.", "wall s",
          "compile s", "ESS/s", "ESS/s vs NUTS", "ESS / 1k evals", "global accept", "max k̂", "proposals made"]


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
