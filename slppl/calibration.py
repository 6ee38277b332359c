"""Simulation-based calibration (Talts et al. 2018): is a sampler right on average over the prior?

For each of ``N`` data sets: draw ``θ`` from the prior and data from the likelihood given ``θ``,
run the sampler on that data, thin its draws to ``L`` and count how many fall below ``θ`` (per
coordinate). If the sampler draws from the posterior, each rank is uniform on ``{0, …, L}``; a
rank histogram that is U-shaped, peaked or sloped shows draws too narrow, too wide or biased.
"""

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.diagnostics import effective_sample_size

from .layout import site_layout
from .simulate import simulate

__all__ = ["SBCResult", "sbc"]


class SBCResult(NamedTuple):
    """Ranks of the prior draws among the thinned posterior draws.

    Fields:
        ranks: ``(num_datasets, d)`` integers in ``[0, num_draws]``, per coordinate of the flat
            unconstrained latent vector (:func:`slppl.site_layout`; ranks do not change under the
            monotone per-coordinate transforms to constrained space).
        num_draws: ``L``, posterior draws kept per data set.
        pvalues: ``(d,)`` chi-square test of uniform ranks over ``num_bins`` bins, per coordinate.
        min_ess: ``(num_datasets,)`` smallest bulk ESS of each run (below ``L``: the thinned draws
            are autocorrelated and the ranks less than uniform even for an exact sampler).
        names: ``d`` labels, ``site[index]``.
        accept_prob: ``(num_datasets,)`` mean ``accept_prob`` of each run (NaN if the kernel has none).
    """

    ranks: Any
    num_draws: int
    pvalues: Any
    min_ess: Any
    names: list
    accept_prob: Any

    def passed(self, alpha=0.01):
        """Whether every coordinate's p-value exceeds ``alpha / d`` (Bonferroni)."""
        return bool(np.min(self.pvalues) > alpha / len(self.pvalues))


def sbc(rng_key, model, *model_args, kernel, num_datasets=100, num_warmup=200, num_samples=500, num_draws=99,
        num_bins=10, progress_bar=True, **model_kwargs):
    """Simulation-based calibration of ``kernel`` on ``model``.

    Args:
        rng_key: PRNG key.
        model, model_args, model_kwargs: the model, called as for inference with data of the
            shapes to simulate (the data's values are not used).
        kernel: ``model -> MCMCKernel``, e.g. ``NUTS`` or ``lambda m: SL(m, denoiser=den)``.
        num_datasets: simulated data sets (one chain each; one compiled loop serves them all).
        num_warmup, num_samples: each run's lengths.
        num_draws: ``L``, draws kept (evenly spaced) of each run's ``num_samples``.
        num_bins: bins of the uniformity test (``L + 1`` must be a multiple).

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> from numpyro.infer import NUTS
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 1))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> res = sbc(jax.random.PRNGKey(0), model, jnp.zeros(3), kernel=NUTS, num_datasets=20,
        ...           num_warmup=100, num_samples=200, progress_bar=False)
        >>> res.ranks.shape, res.names
        ((20, 1), ['mu'])
    """
    if (num_draws + 1) % num_bins or num_draws > num_samples:
        raise ValueError(f"num_draws + 1 ({num_draws + 1}) must be a multiple of num_bins ({num_bins}) "
                         f"and num_draws at most num_samples ({num_samples})")
    k_sim, k_run = jax.random.split(rng_key)
    sims = simulate(k_sim, model, *model_args, num_simulations=num_datasets, **model_kwargs)

    def conditioned(data):
        with handlers.condition(data=data):
            return model(*model_args, **model_kwargs)

    run = _chain_runner(kernel(conditioned), num_warmup, num_samples)
    keep = np.round(np.linspace(0, num_samples - 1, num_draws)).astype(int)
    ranks, min_ess, acc = [], [], []
    steps = range(num_datasets)
    if progress_bar:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="SBC")
    for i in steps:
        data = jax.tree_util.tree_map(lambda v: v[i], sims.data)
        draws, accept_prob = (np.asarray(a) for a in run(jax.random.fold_in(k_run, i), data))
        min_ess.append(float(np.min(effective_sample_size(draws[None]))))
        acc.append(float(np.mean(accept_prob)))
        ranks.append(np.sum(draws[keep] < np.asarray(sims.latents[i]), 0))
    ranks = np.stack(ranks)
    if np.min(min_ess) < num_draws:
        warnings.warn(f"some runs have ESS {np.min(min_ess):.0f} < num_draws = {num_draws}: their ranks are not "
                      "independent draws; raise num_samples or lower num_draws", RuntimeWarning, stacklevel=2)
    return SBCResult(ranks, num_draws, _uniformity_pvalues(ranks, num_draws, num_bins), np.asarray(min_ess),
                     _names(model, model_args, model_kwargs), np.asarray(acc))


def _chain_runner(kernel, num_warmup, num_samples):
    """``run(rng_key, data) -> (draws, accept_prob)``: one chain of ``kernel`` on a data set, its
    flat unconstrained draws after warmup.

    Not ``numpyro.infer.MCMC``: it compiles its collection loop again on every ``run`` (2 s per
    data set here, and memory that grew until LLVM failed after ~100 runs); this loop compiles
    once, as the kernels read the data from their arguments.
    """
    @jax.jit
    def chain(state, data):
        def body(state, _):
            state = kernel.sample(state, (data,), {})
            return state, (ravel_pytree(getattr(state, kernel.sample_field))[0],
                           getattr(state, "accept_prob", jnp.nan))

        _, (draws, accept_prob) = jax.lax.scan(body, state, None, length=num_warmup + num_samples)
        return draws[num_warmup:], accept_prob[num_warmup:]

    def run(rng_key, data):
        return chain(kernel.init(rng_key, num_warmup, None, (data,), {}), data)

    return run


def _uniformity_pvalues(ranks, num_draws, num_bins):
    from scipy.stats import chi2

    width = (num_draws + 1) // num_bins
    counts = np.stack([np.bincount(r // width, minlength=num_bins) for r in ranks.T])
    expected = ranks.shape[0] / num_bins
    stat = np.sum((counts - expected) ** 2 / expected, 1)
    return chi2.sf(stat, num_bins - 1)


def _names(model, model_args, model_kwargs):
    names = []
    for site in site_layout(model, *model_args, **model_kwargs):
        size = math.prod(site.shape)
        names += [site.name] if site.shape == () else [f"{site.name}[{j}]" for j in range(size)]
    return names

