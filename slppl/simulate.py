"""Simulations from a model's prior predictive: latents (flat, unconstrained) with the data they generate.

Both amortized training (:meth:`slppl.denoisers.Learned.fit_amortized`) and simulation-based
calibration (:func:`slppl.sbc`) need pairs ``(x, data)`` with ``x`` from the prior and ``data``
from the likelihood given ``x``: then ``x`` is an exact posterior draw given ``data``. The model
is called with the user's data, so its observed sites (names, shapes) are known; NumPyro's
``uncondition`` handler samples them instead.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro import handlers

from .layout import flatten_draws

__all__ = ["Simulations", "simulate", "observed_sites", "observed_vector"]


class Simulations(NamedTuple):
    """Prior-predictive simulations.

    Fields:
        latents: ``(n, d)`` flat unconstrained latent vectors (the :func:`slppl.site_layout` order).
        observations: ``(n, n_obs)`` observed sites flattened (sites sorted by name).
        samples: dict of constrained latent draws, leading axis ``n`` (as ``mcmc.get_samples()``).
        data: dict of the simulated observed sites, leading axis ``n``.
    """

    latents: jax.Array
    observations: jax.Array
    samples: dict
    data: dict


class _simulate_observed(handlers.uncondition):
    """``uncondition`` that draws each observed site with its data's shape: an observation of shape
    ``(n,)`` under a scalar distribution is ``n`` iid draws, as its log density already reads it."""

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["is_observed"]:
            fn, shape = msg["fn"], jnp.shape(msg["value"])
            batch = shape[: len(shape) - len(fn.event_shape)]
            if tuple(fn.batch_shape) != tuple(batch):
                msg["fn"] = fn.expand(batch)
        super().process_message(msg)


def observed_sites(model, *model_args, **model_kwargs):
    """``{name: value}`` of the model's observed sample sites given its arguments (its data).

    Examples:
        >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 1))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> {k: v.shape for k, v in observed_sites(model, jnp.zeros(3)).items()}
        {'y': (3,)}
    """
    trace = handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(*model_args, **model_kwargs)
    return {name: jnp.asarray(site["value"]) for name, site in sorted(trace.items())
            if site["type"] == "sample" and site["is_observed"]}


def observed_vector(model, *model_args, **model_kwargs):
    """The observed sites flattened into one vector (sites sorted by name) and their ``[(name, shape)]``."""
    obs = observed_sites(model, *model_args, **model_kwargs)
    return ravel_pytree(obs)[0], [(name, tuple(v.shape)) for name, v in obs.items()]


def simulate(rng_key, model, *model_args, num_simulations=1000, **model_kwargs):
    """Draw ``num_simulations`` latents from the prior and data from the likelihood given each.

    The model is called with its arguments as for inference (data included): the observed sites
    are re-sampled (``numpyro.handlers.uncondition``) with the shapes the data give them, a scalar
    likelihood broadcast over the data as its log density is.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 1))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> sims = simulate(jax.random.PRNGKey(0), model, jnp.zeros(3), num_simulations=5)
        >>> sims.latents.shape, sims.observations.shape
        ((5, 1), (5, 3))
    """
    observed = observed_sites(model, *model_args, **model_kwargs)
    if not observed:
        raise ValueError(
            "the model has no observed sites with these arguments: pass the data (any values of the "
            "right shapes) as you would to mcmc.run, so the observed sites and their shapes are known"
        )

    def one(key):
        trace = handlers.trace(_simulate_observed(handlers.seed(model, key))).get_trace(*model_args, **model_kwargs)
        latent = {n: s["value"] for n, s in trace.items()
                  if s["type"] == "sample" and not s["infer"].get("was_observed", False) and not s["is_observed"]}
        data = {n: trace[n]["value"] for n in observed}
        return latent, data

    samples, data = jax.vmap(one)(jax.random.split(rng_key, int(num_simulations)))
    latents = flatten_draws(samples, model, *model_args, **model_kwargs)
    observations = jax.vmap(lambda d: ravel_pytree(d)[0])(data)
    return Simulations(latents, observations, samples, data)
