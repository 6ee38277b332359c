"""Pyro: `slppl.pyro.SL(model)` against Pyro's own NUTS, one run each, through `pyro.infer.MCMC`.

Two models: the demo's two-mode posterior (0.3·N(−2, 0.5²) + 0.7·N(2, 0.5²), 1-d, written with a
factor) and eight schools (non-centred, against the posteriordb reference). One chain, 1000 warmup
+ 2000 draws, seed 0; wall time of `mcmc.run` (compilation and warmup included). SL runs the same
JAX core as the NumPyro kernel and asks torch for every potential (and gradient) through a host
callback, so the table also reports those torch evaluations and their number per second: the
callback's overhead.
Each sampler runs without and with ``jit_compile=True`` (the PyTorch JIT on the potential); each SL
row's ratio is against the NUTS row of the same setting.

Run: ``python benchmarks/pyro_vs_nuts.py [--quick]``; writes ``benchmarks/results/pyro_vs_nuts.md``.
"""

import argparse
import json
import os
import platform
import time
import warnings

import jax
import numpy as np
import pyro
import pyro.distributions as dist
import torch
from numpyro.diagnostics import effective_sample_size
from pyro.infer import MCMC, NUTS

jax.config.update("jax_enable_x64", True)

import slppl.pyro  # noqa: E402
from slppl.accuracy import zero_based  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
POSTERIORDB = os.path.join(HERE, "..", "..", "shared", "benchmarks", "posteriordb", "eight_schools-eight_schools_noncentered")


def two_modes():
    wide = dist.Normal(0.0, 10.0)
    x = pyro.sample("x", wide)
    modes = dist.Normal(torch.tensor([-2.0, 2.0]), 0.5).log_prob(x) + torch.log(torch.tensor([0.3, 0.7]))
    pyro.factor("modes", torch.logsumexp(modes, -1) - wide.log_prob(x))


def schools(y, sigma):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("J", 8):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(mu + tau * theta_trans, sigma), obs=y)


class Counting:
    """Counts the torch calls the SL kernel makes (through its host callbacks)."""

    def __init__(self, kernel):
        self.calls = 0
        host = kernel._host
        for name in ("value", "value_and_grad"):
            fn = getattr(host, name)

            def counted(flat, fn=fn):
                # Torch calls: a batch is one call when the model batches (slppl.pyro_potential);
                # otherwise the callback recurses into this once per row.
                self.calls += flat.ndim == 1 or host.batched is not None
                return fn(flat)

            setattr(host, name, counted)


def run(kernel, model_args, warmup, samples):
    pyro.set_rng_seed(0)
    mcmc = MCMC(kernel, num_samples=samples, warmup_steps=warmup, disable_progbar=True)
    t = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.run(*model_args)
    return mcmc, time.time() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    warmup, samples = (200, 300) if args.quick else (1000, 2000)
    cases = [("two modes (1-d)", two_modes, (), None)]
    if os.path.isdir(POSTERIORDB):
        with open(os.path.join(POSTERIORDB, "data.json")) as f:
            data = json.load(f)
        with open(os.path.join(POSTERIORDB, "reference_moments.json")) as f:
            ref = zero_based({k: (v["mean"], v["sd"]) for k, v in json.load(f)["moments"].items()})
        cases.append(("eight schools (non-centred)", schools,
                      (torch.tensor(data["y"], dtype=torch.float32), torch.tensor(data["sigma"], dtype=torch.float32)),
                      ref))
    lines = ["# Pyro: `slppl.pyro.SL(model)` against Pyro's NUTS (`benchmarks/pyro_vs_nuts.py`)", "",
             f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
             f"pyro {pyro.__version__}, jax {jax.__version__}; {time.strftime('%Y-%m-%d')}; 1 chain × ({warmup} + {samples}), "
             "seed 0; wall time includes compilation and warmup.", "",
             "| case | sampler | result | min ESS | s | ESS/s | SL/NUTS ESS/s | torch calls | calls/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, model, model_args, ref in cases:
        per_s = {}
        for label in ("NUTS", "SL(model)", "NUTS, jit_compile", "SL(model), jit_compile"):
            jit = label.endswith("jit_compile")
            nuts = label.startswith("NUTS")
            kwargs = dict(jit_compile=True, ignore_jit_warnings=True) if jit else {}
            kernel = NUTS(model, **kwargs) if nuts else slppl.pyro.SL(model, **kwargs)
            counter = None if nuts else Counting(kernel)
            baseline = "NUTS, jit_compile" if jit else "NUTS"
            mcmc, seconds = run(kernel, model_args, warmup, samples)
            draws = {k: v.numpy() for k, v in mcmc.get_samples().items()}
            if ref is None:
                heavy = (draws["x"] > 0).astype(float)
                ess = float(effective_sample_size(heavy[None, :, None])[0])
                result = f"heavy-mode weight {heavy.mean():.3f} ± {np.sqrt(heavy.var() / ess):.3f} (truth 0.700)"
            else:
                flat = {"mu": draws["mu"], "tau": draws["tau"],
                        **{f"theta_trans[{j}]": draws["theta_trans"][:, j] for j in range(8)}}
                z = max(abs(v.mean() - ref[k][0]) / ref[k][1] for k, v in flat.items() if k in ref)
                ess = min(float(effective_sample_size(v[None])) for v in flat.values())
                result = f"max z {z:.3f}"
            # A chain that never leaves one mode has a constant indicator: its ESS is undefined (nan).
            per_s[label] = ess / seconds
            calls = counter.calls if counter else None
            ratio = ""
            if not nuts:
                ratio = ("NUTS stuck in one mode" if np.isnan(per_s[baseline])
                         else f"{per_s[label] / per_s[baseline]:.2f}")
            lines.append(f"| {name} | {label} | {result} | {ess:.0f} | {seconds:.1f} | {per_s[label]:.1f} | {ratio} | "
                         + (f"{calls} | {calls / seconds:.0f} |" if calls else " | |"))
            print(lines[-1], flush=True)
    out = os.path.join(HERE, "results", "pyro_vs_nuts" + ("_quick" if args.quick else "") + ".md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
