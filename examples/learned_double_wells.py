"""A learned denoiser that pays: eight independent double wells (2⁸ = 256 modes of equal mass).

A Gaussian mixture fitted to 4,000 draws cannot cover 256 modes, so the exact SL kernel driven by
it hardly moves. The exact denoiser of a product acts coordinate by coordinate, which
``Learned.fit(..., architecture="coordinatewise")`` can learn from the same draws. Both drive the
exact kernel on the Karras grid (a network needs steps up to large t, see docs/denoisers.md), and
the script prints each one's acceptance and the fraction of draws with x_i > 0 (truth: 0.5 for
every coordinate).

The draws here are exact (inverse CDF per coordinate); in practice they are an earlier run's.
Needs ``pip install -e '.[learn]'``. Run: ``python examples/learned_double_wells.py [--quick]``
(about 3 minutes on 2 cores; ``--quick``: 500 training steps, shorter chains).
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC

jax.config.update("jax_enable_x64", True)

from slppl import SL  # noqa: E402
from slppl.denoisers import GaussianMixture, Learned  # noqa: E402
from slppl.time_grids import Karras  # noqa: E402

D = 8


def potential(x):
    return 2.0 * jnp.sum((x**2 - 1.0) ** 2)


def draws(n, seed=0):
    grid = np.linspace(-3.0, 3.0, 60001)
    cdf = np.cumsum(np.exp(-2.0 * (grid**2 - 1.0) ** 2))
    return jnp.asarray(np.interp(np.random.default_rng(seed).uniform(size=(n, D)), cdf / cdf[-1], grid))


def run(den, num_samples):
    kernel = SL(potential_fn=potential, denoiser=den, grid=Karras(), num_steps=25)
    mcmc = MCMC(kernel, num_warmup=100, num_samples=num_samples, num_chains=2, chain_method="sequential",
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(2), init_params=jnp.zeros((2, D)), extra_fields=("accept_prob",))
    x = np.asarray(mcmc.get_samples())
    return float(mcmc.get_extra_fields()["accept_prob"].mean()), (x > 0).mean(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    x = draws(4000)
    num_iters, num_samples = (500, 300) if args.quick else (3000, 1500)
    mixture = GaussianMixture.fit(jax.random.PRNGKey(0), x, potential_fn=potential)
    learned = Learned.fit(jax.random.PRNGKey(1), x, potential_fn=potential, times=Karras().times(25),
                          architecture="coordinatewise", num_iters=num_iters)
    print(f"network kept: {learned.settings['residual_kept']} (log-weight variance "
          f"{learned.validation['trained']:.2f} against its base's {learned.validation['base']:.2f})")
    for name, den in (("mixture", mixture), ("learned, coordinatewise", learned)):
        acc, positive = run(den, num_samples)
        print(f"{name:24s} acceptance {acc:.3f}   P(x_i > 0): {np.array2string(positive, precision=2)}")


if __name__ == "__main__":
    main()
