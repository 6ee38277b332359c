"""SL(model) in float32 (JAX's default) and float64 (``jax_enable_x64``) on one model.

The model: two Gaussian modes in d = 10 (weights 0.3 / 0.7, means ±1.5·1, sd 0.7 per coordinate)
plus a correlated 20-d Gaussian block. Each precision runs in its own process (JAX's precision is
fixed at start-up), 2 chains x (1000 + 1000), the same seed. Prints the heavy mode's weight with
its MCSE, the global acceptance, the Pareto k̂ of the proposal weights and the wall time.

Run: ``python examples/float32_vs_float64.py``.
"""

import json
import os
import subprocess
import sys

D = 10


def model():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    w = jnp.array([0.3, 0.7])
    means = jnp.stack([-1.5 * jnp.ones(D), 1.5 * jnp.ones(D)])
    numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=w), dist.Normal(means, 0.7).to_event(1)))
    cov = 0.5 * jnp.eye(20) + 0.5
    numpyro.sample("z", dist.MultivariateNormal(jnp.zeros(20), cov))


def run(x64):
    import time

    import numpyro

    numpyro.set_host_device_count(4)
    import jax
    import numpy as np
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC

    jax.config.update("jax_enable_x64", x64)
    from slppl import SL
    from slppl.diagnostics import check_sl

    mcmc = MCMC(SL(model), num_warmup=1000, num_samples=1000, num_chains=2, chain_method="parallel",
                progress_bar=False)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(0))
    wall = time.perf_counter() - start
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    heavy = (x.mean(-1) > 0).astype(float)
    ess = float(effective_sample_size(heavy[..., None])[0])
    table = check_sl(mcmc, warn=False)
    return {"dtype": str(x.dtype), "heavy": float(heavy.mean()), "mcse": float(np.sqrt(0.21 / ess)),
            "accept": float(table.accept_prob.mean()), "khat": float(table.pareto_k.max()), "wall": wall}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(run(sys.argv[2] == "64")))
        sys.exit()
    here = os.path.abspath(__file__)
    print("| precision | heavy-mode weight (truth 0.7) | global accept | max k̂ | wall s |")
    print("|---|---|---|---|---|")
    for bits in ("32", "64"):
        out = subprocess.run([sys.executable, here, "--one", bits], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['dtype']} | {r['heavy']:.3f} ± {r['mcse']:.3f} | {r['accept']:.3f} | {r['khat']:.2f} | {r['wall']:.1f} |")
