"""BlackJAX's adaptive tempered SMC with HMC moves on the seeds' two-component family.

The baseline the high-dimension issue asks for beside NUTS and ``SL(model)``
(``high_dimension.py``): ``0.7·N(0.3·a, I) + 0.3·N(−0.7·a, I)``, ``a = 1``, d = 64, 128, 512. SMC
needs a proper start: particles from the reference ``N(0, 3²·I)``, which is the "prior", and the
"likelihood" is the target over it, so the final tempered measure is the target itself.

Settings (not tuned per d beyond the usual scaling): 4,000 particles, target ESS 0.5, systematic
resampling, 10 HMC moves per temperature with 10 leapfrog steps of size ``0.8·d^(−1/4)`` and unit
mass. Four independent runs per d (seeds 0–3). Reports the heavy mode's weight (the particles'
weighted share with ``mean(x) > −0.2``), tempering steps, the HMC acceptance at the last
temperature, gradient evaluations and wall time (compilation included).

Needs ``blackjax`` (``pip install -e ".[bench]"``; not a dependency of slppl itself). Writes
``benchmarks/results/smc_baseline.md``. Run: ``python benchmarks/smc_baseline.py [--dims 64,128]``.
"""

import argparse
import time

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

from report import environment, write_result  # noqa: E402

P = 0.7
REF_SCALE = 3.0
NUM_PARTICLES = 4000
NUM_MCMC = 10
NUM_LEAPFROG = 10


def log_target(x):
    a = jnp.ones_like(x)
    return jnp.logaddexp(jnp.log(P) - 0.5 * jnp.sum((x - (1 - P) * a) ** 2),
                         jnp.log1p(-P) - 0.5 * jnp.sum((x + P * a) ** 2))


def log_reference(x):
    return -0.5 * jnp.sum((x / REF_SCALE) ** 2)


def run_smc(rng_key, d):
    import blackjax
    from blackjax.smc import extend_params, resampling

    params = extend_params({"step_size": 0.8 * d ** -0.25, "inverse_mass_matrix": jnp.ones(d),
                            "num_integration_steps": NUM_LEAPFROG})
    smc = blackjax.adaptive_tempered_smc(
        log_reference, lambda x: log_target(x) - log_reference(x), blackjax.hmc.build_kernel(), blackjax.hmc.init,
        params, resampling.systematic, 0.5, num_mcmc_steps=NUM_MCMC,
    )
    k_init, k_run = jax.random.split(rng_key)
    state = smc.init(REF_SCALE * jax.random.normal(k_init, (NUM_PARTICLES, d)))

    def cond(carry):
        return carry[1].tempering_param < 1.0

    def body(carry):
        key, state, n, _ = carry
        key, sub = jax.random.split(key)
        state, info = smc.step(sub, state)
        return key, state, n + 1, jnp.mean(info.update_info.acceptance_rate)

    _, state, n, accept = jax.jit(lambda s: jax.lax.while_loop(cond, body, (k_run, s, 0, 0.0)))(state)
    heavy = jnp.sum(state.weights * (state.particles.mean(-1) > -0.2))
    return float(heavy), int(n), float(accept)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="64,128,512")
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args(argv)
    rows = []
    for d in (int(v) for v in args.dims.split(",")):
        for seed in range(args.runs):
            t = time.perf_counter()
            heavy, steps, accept = run_smc(jax.random.PRNGKey(seed), d)
            wall = time.perf_counter() - t
            grads = steps * NUM_MCMC * NUM_LEAPFROG * NUM_PARTICLES
            rows.append((d, seed, heavy, steps, accept, grads, wall))
            print(rows[-1], flush=True)
    import blackjax

    env = environment(blackjax=blackjax.__version__)
    lines = ["# BlackJAX adaptive tempered SMC (HMC moves) on the seeds' family", "", env + ".", "",
             "| d | seed | heavy-mode weight (truth 0.7) | tempering steps | HMC accept, last step | gradient evals | wall s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {d} | {s} | {h:.3f} | {n} | {a:.2f} | {g:.2e} | {w:.1f} |" for d, s, h, n, a, g, w in rows]
    lines += ["", f"{NUM_PARTICLES} particles from N(0, {REF_SCALE:g}²·I), target ESS 0.5, {NUM_MCMC} HMC moves of "
              f"{NUM_LEAPFROG} leapfrog steps (size 0.8·d^(−1/4)) per temperature; compilation included.", ""]
    write_result("smc_baseline.md", lines)


if __name__ == "__main__":
    main()
