"""The benchmark suite: every sampler kind on every case, one `slppl.compare` call per case.

Cases (``cases.py``): the posteriordb / inference-gym reference posteriors (eight schools, both
parametrisations; arK; German credit; a correlated 100-d Gaussian with exact truth) and the
multimodal models (two modes in d = 10 and d = 32, label switching, the 40-mode FAB mixture).
Samplers: NUTS and ``SL(model)`` with each denoiser family it can build (``mixture``, the
default; ``gaussian``; ``laplace``; ``learned`` when ``slppl[learn]`` is installed), all with
their defaults. Ratios are against the NUTS row of the same case, measured in the same run.

Writes ``benchmarks/results.md`` (one table: case x sampler x metrics), the plots of every case
under ``benchmarks/results/suite/``, and the same table with a few plots as
``docs/benchmark_results.md`` for the documentation site.

Run: ``python benchmarks/suite.py [--quick] [--only NAME] [--families mixture,laplace]``
(``make bench``; ``make bench-quick``).
"""

import argparse
import os
import platform
import json
import shutil
import subprocess
import sys
import tempfile
import time

import numpyro

# More host devices than chains: SL(model) with 4 chains on exactly 4 host devices of a 2-core
# machine can deadlock inside XLA (docs: No denoiser).
numpyro.set_host_device_count(8)

import arviz as az  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.infer import NUTS  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import cases  # noqa: E402

from slppl import SL, compare  # noqa: E402
from slppl.diagnostics import pareto_khat  # noqa: E402

FULL = dict(num_chains=4, num_warmup=1000, num_samples=1000)
QUICK = dict(num_chains=2, num_warmup=200, num_samples=300)
QUICK_CASES = ("eight schools (non-centred)", "two modes, d = 10", "label switching")
QUICK_FAMILIES = ("mixture", "laplace")
# The learned family costs 5-10x the mixture (docs: No denoiser); in d = 100 it would take most of the budget.
LEARNED_MAX_DIM = 32
DOCS_PLOTS = ("marginals.png", "ranks.png", "localisation_sl_model_.png")


def families():
    out = ["mixture", "gaussian", "laplace"]
    try:
        import equinox  # noqa: F401
        import optax  # noqa: F401

        out.append("learned")
    except ImportError:
        pass
    return out


def _fmt(v, spec=".3g"):
    return "" if v is None or v != v else format(v, spec)


def _cell_rows(case, result):
    table = result.table.copy()
    if case.modes is not None:  # the mode indicators' ESS counts too: NUTS's chains stay in one mode
        table["min ESS bulk"] = np.minimum(table["min ESS bulk"], table["min mode ESS"])
        table["ESS/s"] = table["min ESS bulk"] / table["wall s"]
        evals = table["grad evals"] + table["potential evals"]
        table["ESS per 1k model evals"] = 1000 * table["min ESS bulk"] / evals
    nuts = table.loc["NUTS", "ESS/s"] if "NUTS" in table.index else float("nan")
    rows = []
    for name, row in table.iterrows():
        if case.modes is not None:
            err = f"{row['max mode error']:.3f} ({row['max mode error in MCSE']:.1f})"
            accuracy = ""
        else:
            err = ""
            accuracy = f"{row['max z']:.3f} / {row['sd ratio min']:.2f}–{row['sd ratio max']:.2f}"
        fields = result.runs[name].fields
        khat = _fmt(float(np.max(pareto_khat(fields["proposal_log_weight"]))), ".2f") \
            if "proposal_log_weight" in fields else ""
        ratio = row["ESS/s"] / nuts if name != "NUTS" and nuts == nuts and nuts > 0 else float("nan")
        if name != "NUTS" and nuts == 0:
            ratio_cell = "NUTS stuck (mode ESS 0)"
        else:
            ratio_cell = f"**{ratio:.2f}**" if ratio == ratio else ""
        rows.append([case.name, name, accuracy, err, _fmt(row["min ESS bulk"], ".0f"), _fmt(row["max R-hat"], ".3f"),
                     str(row["divergences"]), _fmt(row["wall s"], ".1f"), _fmt(row["compile s"], ".1f"),
                     _fmt(row["ESS/s"], ".1f"), ratio_cell,
                     _fmt(row["ESS per 1k model evals"], ".2f"), _fmt(row.get("global accept"), ".3f"), khat])
    return rows


HEADER = ["case", "sampler", "max z / sd ratio", "max mode error (in MCSE)", "min ESS", "max R-hat", "div.",
          "wall s", "compile s", "ESS/s", "ESS/s vs NUTS", "ESS / 1k evals", "global accept", "max k̂"]


def _table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _slug(name):
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def run_case(case, fams, sizes, seed):
    """One ``slppl.compare`` call: the case's table rows and plot paths."""
    samplers = {"NUTS": NUTS(case.model)}
    dim = _dimension(case)
    for fam in fams:
        if fam == "learned" and dim > LEARNED_MAX_DIM:
            continue
        samplers[f"SL({fam})" if fam != "mixture" else "SL(model)"] = SL(case.model, denoiser=fam)
    result = compare(jax.random.PRNGKey(seed), case.model, *case.args, samplers=samplers, reference=case.reference,
                     modes=case.modes, **sizes)
    folder = os.path.join(HERE, "results", "suite_quick" if sizes is QUICK else "suite", _slug(case.name))
    return _cell_rows(case, result), result.plot(folder)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 cases, NUTS + 2 families, 2 chains x (200 + 300)")
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--families", default=None, help="comma-separated SL families (default: all available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case-json", default=None, help=argparse.SUPPRESS)  # internal: one case, rows to this file
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    fams = args.families.split(",") if args.families else (list(QUICK_FAMILIES) if args.quick else families())
    all_cases = cases.reference_cases() + cases.multimodal_cases()
    if args.case_json:
        case = next(c for c in all_cases if c.name == args.only)
        rows, images = run_case(case, fams, sizes, args.seed)
        with open(args.case_json, "w") as f:
            json.dump({"rows": rows, "images": images}, f)
        return
    chosen = [c for c in all_cases if (not args.quick or c.name.startswith(QUICK_CASES))
              and (not args.only or args.only in c.name)]
    rows, images, start = [], {}, time.perf_counter()
    for case in chosen:
        # One process per case: a long process compiling dozens of programs exhausts the
        # kernel's memory maps (vm.max_map_count) and LLVM aborts ("Cannot allocate memory").
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "case.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--only", case.name, "--case-json", out,
                   "--families", ",".join(fams), "--seed", str(args.seed)] + (["--quick"] if args.quick else [])
            subprocess.run(cmd, check=True)
            with open(out) as f:
                done = json.load(f)
        rows += done["rows"]
        images[case.name] = done["images"]
        print(f"{case.name}: {time.perf_counter() - t:.0f} s", flush=True)
        print("\n".join(_table(done["rows"])), flush=True)
    total = time.perf_counter() - start
    env = (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, jax {jax.__version__}, "
           f"numpyro {numpyro.__version__}, arviz {az.__version__}, float64, {time.strftime('%Y-%m-%d')}. "
           f"{sizes['num_chains']} chains x ({sizes['num_warmup']} warmup + {sizes['num_samples']} draws), "
           f"chain_method='parallel' on 8 host devices, every sampler with its defaults, seed {args.seed}. "
           f"The whole suite took {total / 60:.1f} min.")
    notes = [
        "- **max z / sd ratio**: over the parameters with a reference, `z = |mean − ref| / ref_sd`; sd ratio = `sd / ref_sd` "
        "(min–max). **max mode error**: largest `|weight − truth|` over the modes, and in Monte Carlo standard errors.",
        "- **wall s** is one `MCMC.run` (warmup and sampling), compilation included (**compile s**: JAX's own timers). "
        "**ESS/s** = min bulk ESS / wall s; **vs NUTS**: the ratio to the NUTS row of the same case. "
        "Wall times on this shared 2-core machine vary by ±30 % between runs.",
        "- **ESS / 1k evals**: min bulk ESS per 1000 model evaluations with or without gradient (NUTS: leapfrog "
        "steps; SL: walkers' and local NUTS gradients plus one potential per proposed path).",
        "- **max k̂**: Pareto k̂ of SL's proposal weights, worst chain (> 0.7: `check_sl` warns).",
        "- **min ESS** on the multimodal cases is the smaller of the coordinates' bulk ESS and the mode indicators' "
        "ESS: a NUTS chain that stays in one mode has a fine ESS per coordinate but mode indicators that never move. "
        "A mode error in MCSE is then small only because that MCSE is huge: read the error itself.",
    ]
    name = "results_quick.md" if args.quick else "results.md"
    if args.only:
        name = name[:-3] + "_" + _slug(args.only) + ".md"
    text = ["# Benchmark suite" + (" (quick)" if args.quick else ""), "", env, "", *_table(rows), "", *notes, ""]
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(text))
        f.write("\nPlots per case (marginals, rank plots, SL localisation) are in `results/"
                + ("suite_quick" if args.quick else "suite") + "/`.\n")
    if not args.quick and not args.only:
        _write_docs_page(text, images)
    print("\n".join(text))
    print(f"wrote {os.path.join(HERE, name)}")


def _dimension(case):
    from slppl import site_layout

    return site_layout(case.model, *case.args).dim


def _write_docs_page(text, images):
    """The table for the documentation site, with the two-mode case's plots copied next to it."""
    img_dir = os.path.join(ROOT, "docs", "img")
    os.makedirs(img_dir, exist_ok=True)
    shown = []
    for case_name in ("two modes, d = 10", "eight schools (non-centred)"):
        for path in images.get(case_name, []):
            if os.path.basename(path) not in DOCS_PLOTS:
                continue
            target = f"{_slug(case_name)}_{os.path.basename(path)}"
            shutil.copy(path, os.path.join(img_dir, target))
            shown.append((case_name, os.path.basename(path), target))
    lines = ["# Benchmark results", "", "Made by `benchmarks/suite.py` (`make bench`); the same table is in "
             "`benchmarks/results.md`.", ""] + text[2:]
    for case_name, base, target in shown:
        lines += [f"**{case_name}: {base[:-4].replace('_', ' ').strip()}**", "", f"![{case_name} {base}](img/{target})", ""]
    with open(os.path.join(ROOT, "docs", "benchmark_results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
