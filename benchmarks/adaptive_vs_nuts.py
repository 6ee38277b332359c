"""``SL(model)`` with no denoiser against NUTS, in one run, on reference posteriors and multimodal models.

For every case of ``cases.py`` both samplers run 4 chains x (1000 warmup + 2000 draws) with their
defaults, ``chain_method="parallel"``. Wall time is the first run's, compilation and warmup
included (what a user waits for); gradient evaluations are counted over warmup and sampling
(NUTS: leapfrog steps; SL: walkers' and local NUTS leapfrog steps, plus one gradient after each
accepted global move). Writes ``benchmarks/results/adaptive_vs_nuts.md``.

Run: ``python benchmarks/adaptive_vs_nuts.py [--quick] [--only NAME] [--num-proposals K] [--num-local L] [--family F] [--num-samples N] [--seed S]``.
"""

import argparse
import os
import platform
import sys
import time

import numpyro

# More host devices than chains: SL(model) with 4 chains on exactly 4 host devices of a 2-core
# machine can deadlock inside XLA (docs §7); NUTS does not.
numpyro.set_host_device_count(8)

import arviz as az  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cases  # noqa: E402

from slppl import SL  # noqa: E402
from slppl.accuracy import scalar_draws as scalars  # noqa: E402
from slppl.diagnostics import KHAT_THRESHOLD, pareto_khat  # noqa: E402


def run(kernel, case, args, grad_field):
    """One ``mcmc.run`` (one compiled program, as a user's), collecting warmup too for the gradient count."""
    mcmc = MCMC(kernel, num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                chain_method="parallel", progress_bar=False)
    # NumPyro's own switch behind `warmup(collect_warmup=True)`: collect from step 0 in the same
    # run. `warmup()` then `run()` would compile two programs, which no user does.
    mcmc._set_collection_params(0, None, args.num_warmup + args.num_samples)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(args.seed), *case.args, extra_fields=(grad_field,))
    everything = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(everything)
    seconds = time.perf_counter() - start
    w = args.num_warmup
    samples = {k: np.asarray(v)[:, w:] for k, v in everything.items()}
    fields = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    grads = float(np.sum(fields[grad_field]))
    fields = {k: v[:, w:] for k, v in fields.items()}
    return mcmc, samples, fields, seconds, grads


def reference_rows(name, samples, fields, seconds, grads, case):
    draws = scalars(samples)
    names = [k for k in case.reference if k in draws]
    z = [abs(draws[k].mean() - case.reference[k][0]) / case.reference[k][1] for k in names]
    ratio = [draws[k].std() / case.reference[k][1] for k in names]
    stacked = np.stack([draws[k] for k in names], -1)
    ess = np.asarray(effective_sample_size(stacked))
    rhat = np.asarray(split_gelman_rubin(stacked))
    return {
        "max z": f"{max(z):.3f}", "sd ratio": f"{min(ratio):.2f}–{max(ratio):.2f}",
        "min ESS": f"{ess.min():.0f}", "max R-hat": f"{rhat.max():.3f}",
        "s": f"{seconds:.1f}", "ESS/s": f"{ess.min() / seconds:.1f}",
        "grads": f"{grads:.3g}", "ESS/1k grads": f"{1000 * ess.min() / grads:.2f}",
    }, ess.min() / seconds


def mode_rows(name, samples, fields, seconds, grads, case):
    label_fn, truth = case.modes
    labels = np.asarray(label_fn(samples))
    if len(truth) > 4:
        return many_mode_rows(labels, truth, seconds, grads), None
    rows = {}
    worst = 0.0
    for k, w in enumerate(truth):
        ind = (labels == k).astype(float)
        ess = float(effective_sample_size(ind[..., None])[0]) if ind.std() > 0 else float("nan")
        mcse = np.sqrt(ind.mean() * (1 - ind.mean()) / ess) if ess == ess else float("nan")
        rows[f"w{k} (truth {w:.3f})"] = f"{ind.mean():.3f} ± {mcse:.3f}"
        worst = max(worst, abs(ind.mean() - w))
    ind = (labels == len(truth) - 1).astype(float)
    rows["indicator ESS"] = f"{float(effective_sample_size(ind[..., None])[0]):.0f}" if ind.std() > 0 else "0"
    rows["indicator R-hat"] = f"{float(split_gelman_rubin(ind[..., None])[0]):.3f}" if ind.std() > 0 else "nan"
    rows["max abs error"] = f"{worst:.3f}"
    rows["s"] = f"{seconds:.1f}"
    rows["grads"] = f"{grads:.3g}"
    return rows, None


def many_mode_rows(labels, truth, seconds, grads):
    """One summary row for many modes: coverage, the worst weight error, and it in MCSEs."""
    freq, ess, err_mcse = np.zeros(len(truth)), np.zeros(len(truth)), np.zeros(len(truth))
    for k, w in enumerate(truth):
        ind = (labels == k).astype(float)
        freq[k] = ind.mean()
        ess[k] = float(effective_sample_size(ind[..., None])[0]) if ind.std() > 0 else 0.0
        # MCSE at the true weight, so a mode never visited counts as an error of w / sqrt(w(1-w)/ESS).
        mcse = np.sqrt(w * (1 - w) / max(ess[k], 1.0))
        err_mcse[k] = abs(freq[k] - w) / mcse
    visited = ess > 0
    rhat = max((float(split_gelman_rubin((labels == k).astype(float)[..., None])[0])
                for k in range(len(truth)) if visited[k]), default=float("nan"))
    return {
        "modes visited": f"{int((freq > 0).sum())} / {len(truth)}",
        "max abs error": f"{np.abs(freq - truth).max():.4f}",
        "max error / MCSE": f"{err_mcse.max():.1f}",
        "min indicator ESS": f"{ess.min():.0f}",
        "max indicator R-hat": f"{rhat:.3f}",
        "s": f"{seconds:.1f}", "grads": f"{grads:.3g}",
    }


def sl_extras(fields):
    acc = np.asarray(fields["accept_prob"]).mean()
    khat = pareto_khat(fields["proposal_log_weight"])
    return {"accept": f"{acc:.3f}", "max k-hat": f"{khat.max():.2f}",
            "k-hat warning": "yes" if khat.max() > KHAT_THRESHOLD else "no"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 chains x (200 + 500)")
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--num-proposals", type=int, default=None, help="SL's num_proposals (default: SL's own)")
    parser.add_argument("--num-local", type=int, default=None, help="SL's num_local (default: SL's own)")
    parser.add_argument("--family", default=None, help="SL's denoiser family (default: SL's own, a mixture)")
    parser.add_argument("--num-samples", type=int, default=None, help="draws per chain after warmup (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    num_samples = args.num_samples
    args.num_chains, args.num_warmup, args.num_samples = (2, 200, 500) if args.quick else (4, 1000, 2000)
    if num_samples:
        args.num_samples = num_samples
    lines = [
        "# `SL(model)` (no denoiser) against NUTS",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, jax {jax.__version__}, "
        f"numpyro {numpyro.__version__}, arviz {az.__version__}, float64. {args.num_chains} chains x "
        f"({args.num_warmup} + {args.num_samples}), parallel, defaults"
        + (f", num_proposals={args.num_proposals}" if args.num_proposals else "")
        + (f", num_local={args.num_local}" if args.num_local is not None else "")
        + (f", denoiser={args.family!r}" if args.family else "")
        + f", seed {args.seed}. Wall time includes compilation and warmup.",
        "",
    ]
    for group, rows_fn in ((cases.reference_cases(), reference_rows), (cases.multimodal_cases(), mode_rows)):
        for case in group:
            if args.only and args.only not in case.name:
                continue
            table, ratio = [], {}
            sl = SL(case.model, denoiser=args.family, num_proposals=args.num_proposals, num_local=args.num_local)
            for name, kernel, field in (("NUTS", NUTS(case.model), "num_steps"), ("SL", sl, "num_grad_evals")):
                mcmc, samples, fields, seconds, grads = run(kernel, case, args, field)
                row, per_s = rows_fn(name, samples, fields, seconds, grads, case)
                row["divergences"] = str(int(np.asarray(fields["diverging"]).sum()))
                if name == "SL":
                    row.update(sl_extras(fields))
                ratio[name] = per_s
                table.append((name, row))
                print(case.name, name, row, flush=True)
            cols = list(table[-1][1])
            lines += [f"## {case.name}", "", "| sampler | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
            lines += ["| " + name + " | " + " | ".join(row.get(c, "") for c in cols) + " |" for name, row in table]
            if ratio.get("NUTS"):
                lines += ["", f"ESS per second, SL / NUTS: {ratio['SL'] / ratio['NUTS']:.2f}"]
            lines.append("")
    os.makedirs(args.out, exist_ok=True)
    name = "adaptive_vs_nuts_quick" if args.quick else "adaptive_vs_nuts"
    if args.only:
        name += "_" + "".join(c if c.isalnum() else "_" for c in args.only.lower())
    if args.num_proposals:
        name += f"_k{args.num_proposals}"
    if args.num_local is not None:
        name += f"_local{args.num_local}"
    if args.family:
        name += f"_{args.family}"
    if num_samples:
        name += f"_n{num_samples}"
    with open(os.path.join(args.out, name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
