"""What a second `MCMC.run` on new data costs: compile time and memory maps, SL vs NUTS.

Users loop one kernel over many data sets (SBC, cross-validation). Each XLA executable holds memory
maps, and a process dies at ``vm.max_map_count`` (65530 here) with "LLVM compilation error: Cannot
allocate memory". This script runs one `MCMC` object (``jit_model_args=True``) on 6 data sets of
the same shape and prints, per run, the wall time and the number of new memory maps, with the
progress bar on and off. Linux only (reads /proc/self/maps).

Run: ``python benchmarks/repeated_runs.py``; writes ``benchmarks/results/repeated_runs.md``.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

from slppl import SL
from slppl.denoisers import Gaussian


def model(data):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("obs", dist.Normal(mu, 1.0), obs=data)


def maps():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def main(runs=6):
    lines = [
        "# Repeated runs on new data (jit_model_args=True): seconds and new memory maps per run",
        "",
        f"jax {jax.__version__}, numpyro {numpyro.__version__}, {os.cpu_count()} CPU cores; "
        "20 warmup + 100 draws, 1 chain, 20 observations.",
        "",
        "| kernel | progress bar | run 1: s / maps | later runs: mean s / mean maps |",
        "|---|---|---|---|",
    ]
    for name, make in [("NUTS", lambda: NUTS(model)),
                       ("SL", lambda: SL(model, denoiser=Gaussian(jnp.zeros(1), jnp.eye(1)), num_steps=10))]:
        for progress_bar in (True, False):
            mcmc = MCMC(make(), num_warmup=20, num_samples=100, progress_bar=progress_bar, jit_model_args=True)
            rows = []
            for i in range(runs):
                before, start = maps(), time.perf_counter()
                data = jax.random.normal(jax.random.PRNGKey(i), (20,)) + 1.0
                mcmc.run(jax.random.PRNGKey(i), data)
                jax.block_until_ready(mcmc.get_samples())
                rows.append((time.perf_counter() - start, maps() - before))
            later_s = sum(r[0] for r in rows[1:]) / (runs - 1)
            later_maps = sum(r[1] for r in rows[1:]) / (runs - 1)
            lines.append(f"| {name} | {progress_bar} | {rows[0][0]:.2f} / {rows[0][1]} | {later_s:.2f} / {later_maps:.0f} |")
            print(lines[-1], flush=True)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "repeated_runs.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
