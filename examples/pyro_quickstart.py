"""slppl with Pyro: SL and NUTS on a two-mode posterior, through ``pyro.infer.MCMC``.

The model: a 1-d mixture 0.3·N(−2, 0.5²) + 0.7·N(2, 0.5²) as a Pyro model. ``slppl.pyro.SL(model)``
builds its own denoiser during warmup (walkers, a fitted mixture, exact global SL moves); NUTS
runs alongside. Both runs go through Pyro's own ``MCMC``, ``summary()`` and ArviZ.

Run: ``python examples/pyro_quickstart.py [--warmup 500] [--samples 2000]`` (needs ``slppl[pyro]``).
"""

import argparse

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC, NUTS

import slppl.pyro


def model():
    """0.3·N(−2, 0.5²) + 0.7·N(2, 0.5²), written with a factor: torch cannot unconstrain a
    MixtureSameFamily site (no transform for its support, torch 2.13), so Pyro's NUTS could not run it either."""
    wide = dist.Normal(0.0, 10.0)
    x = pyro.sample("x", wide)
    modes = dist.Normal(torch.tensor([-2.0, 2.0]), 0.5).log_prob(x) + torch.log(torch.tensor([0.3, 0.7]))
    pyro.factor("modes", torch.logsumexp(modes, -1) - wide.log_prob(x))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--walkers", type=int, default=16)
    args = parser.parse_args()
    for name, kernel in (("SL(model)", slppl.pyro.SL(model, num_walkers=args.walkers)), ("NUTS", NUTS(model))):
        pyro.set_rng_seed(0)
        # Pyro's defaults on a 2-core machine run 2 chains one after the other (1 "available CPU").
        mcmc = MCMC(kernel, num_samples=args.samples, warmup_steps=args.warmup, num_chains=1)
        mcmc.run()
        mcmc.summary()
        x = mcmc.get_samples()["x"].numpy()
        print(f"{name}: heavy-mode weight {np.mean(x > 0):.3f} (truth 0.700)")
        idata = slppl.pyro.to_arviz(mcmc)
        print(f"{name}: ArviZ posterior dims {dict(idata.posterior.sizes)}")


if __name__ == "__main__":
    main()
