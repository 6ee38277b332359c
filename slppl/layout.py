"""Where each latent site sits in the flat vector the denoiser sees."""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import initialize_model, unconstrain_fn

__all__ = ["Site", "Layout", "site_layout", "flat_potential", "flatten_draws", "discrete_latent_sites",
           "model_arguments"]


class Site(NamedTuple):
    """One latent site: its name, unconstrained shape and slice of the flat vector."""

    name: str
    shape: tuple
    slice: slice


class Layout(tuple):
    """A tuple of :class:`Site` with a readable table, plus ``ravel``/``unravel`` helpers."""

    def __new__(cls, sites, unravel):
        self = super().__new__(cls, sites)
        self.unravel = unravel
        return self

    @property
    def dim(self):
        """Length of the flat vector."""
        return self[-1].slice.stop if self else 0

    def ravel(self, z):
        """Flatten a dict of unconstrained site values into the denoiser's vector."""
        return ravel_pytree(z)[0]

    def __str__(self):
        rows = [f"{'site':<20} {'unconstrained shape':<20} slice"]
        rows += [f"{s.name:<20} {str(s.shape):<20} [{s.slice.start}:{s.slice.stop}]" for s in self]
        return "\n".join(rows)


def model_arguments(model_args, model_kwargs, where):
    """``(model_args, model_kwargs)`` of a function that takes ``*model_args, **model_kwargs``, with
    the older keywords ``model_args=`` / ``model_kwargs=`` still read (with a ``FutureWarning``).

    Examples:
        >>> model_arguments((3,), {"scale": 2.0}, "Gaussian.fit")
        ((3,), {'scale': 2.0})
    """
    model_kwargs = dict(model_kwargs)
    old_args, old_kwargs = model_kwargs.pop("model_args", None), model_kwargs.pop("model_kwargs", None)
    if old_args is None and old_kwargs is None:
        return tuple(model_args), model_kwargs
    warnings.warn(f"{where}(..., model_args=..., model_kwargs=...) is deprecated: pass the model's arguments "
                  f"after the model, as to MCMC.run: {where}(..., model, *model_args, **model_kwargs)",
                  FutureWarning, stacklevel=3)
    return tuple(model_args) + tuple(old_args or ()), {**(old_kwargs or {}), **model_kwargs}


def discrete_latent_sites(model, *model_args, rng_key=None, **model_kwargs):
    """Names of the unobserved sample sites with a discrete distribution.

    Continuous sites take values from ``init_to_uniform`` rather than their sampler, so a site
    without one (``dist.ImproperUniform``, a flat prior) does not stop the search. ``rng_key``
    only seeds the trace; the names do not depend on it.

    Examples:
        >>> import numpyro, numpyro.distributions as dist
        >>> def model():
        ...     numpyro.sample("z", dist.Bernoulli(0.5))
        ...     numpyro.sample("x", dist.Normal(0.0, 1.0))
        >>> discrete_latent_sites(model)
        ['z']
    """
    rng_key = jax.random.PRNGKey(0) if rng_key is None else rng_key
    traced = handlers.substitute(handlers.seed(model, rng_key), substitute_fn=init_to_uniform)
    trace = handlers.trace(traced).get_trace(*model_args, **model_kwargs)
    return [
        name
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"] and getattr(site["fn"], "is_discrete", False)
    ]


def _initialize(model, model_args, model_kwargs, rng_key):
    rng_key = jax.random.PRNGKey(0) if rng_key is None else rng_key
    return initialize_model(rng_key, model, model_args=model_args, model_kwargs=model_kwargs)


def flat_potential(model, *model_args, rng_key=None, **model_kwargs):
    """The model's potential on the flat unconstrained vector the denoiser sees.

    Returns ``(potential_fn, init_position, layout)``: ``potential_fn(x) = U(unravel(x))``, a
    valid initial point from NumPyro's default init strategy, and the :func:`site_layout`. Use it
    to build a denoiser from the model, e.g. ``laplace(*flat_potential(model, data)[:2])``.
    ``rng_key`` (a keyword, default ``PRNGKey(0)``) seeds the initial point only; the potential
    and the layout do not depend on it.

    Examples:
        >>> import numpyro, numpyro.distributions as dist
        >>> def model():
        ...     numpyro.sample("x", dist.Normal(0.0, 1.0).expand([2]))
        >>> U, x0, layout = flat_potential(model)
        >>> x0.shape, layout.dim
        ((2,), 2)
    """
    info = _initialize(model, model_args, model_kwargs, rng_key)
    layout = _layout(info.param_info.z)
    return (lambda x: info.potential_fn(layout.unravel(x))), layout.ravel(info.param_info.z), layout


def _layout(z):
    _, unravel = ravel_pytree(z)
    sites, start = [], 0
    for name in sorted(z):
        shape = tuple(np.shape(z[name]))
        size = int(np.prod(shape, dtype=int))
        sites.append(Site(name, shape, slice(start, start + size)))
        start += size
    return Layout(sites, unravel)


def site_layout(model, *model_args, rng_key=None, **model_kwargs):
    """The layout of the flat unconstrained vector that an SL denoiser acts on.

    The vector is ``jax.flatten_util.ravel_pytree`` of the dict of unconstrained latent values:
    sites in sorted name order, each flattened row-major, after NumPyro's bijection to the
    unconstrained space (a Dirichlet over K categories takes K − 1 entries, a HalfNormal scale is
    logged, ...). The layout does not depend on randomness: ``rng_key`` (a keyword) only seeds
    the trace that reads it, so it is optional here, unlike where a key draws something.

    Examples:
        >>> import numpyro, numpyro.distributions as dist
        >>> def model():
        ...     numpyro.sample("sigma", dist.HalfNormal(1.0))
        ...     numpyro.sample("beta", dist.Normal(0, 1).expand([3]))
        >>> layout = site_layout(model)
        >>> [(s.name, s.shape, s.slice.start, s.slice.stop) for s in layout]
        [('beta', (3,), 0, 3), ('sigma', (), 3, 4)]
    """
    return _layout(_initialize(model, model_args, model_kwargs, rng_key).param_info.z)


def flatten_draws(draws, model=None, *model_args, **model_kwargs):
    """Draws as the ``(n, d)`` array of flat unconstrained vectors that denoisers are fitted to.

    ``draws`` is either that array already (returned as is) or a dict of constrained draws as
    ``mcmc.get_samples()`` returns it (leading axis = draws), given with the model and its
    arguments: sites are unconstrained by NumPyro's bijections and flattened in the
    :func:`site_layout` order; deterministic and observed sites in the dict are ignored.

    Examples:
        >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> def model():
        ...     numpyro.sample("sigma", dist.HalfNormal(1.0))
        ...     numpyro.sample("beta", dist.Normal(0, 1).expand([2]))
        >>> flat = flatten_draws({"sigma": jnp.ones(5), "beta": jnp.zeros((5, 2))}, model)
        >>> flat.shape, float(flat[0, 2])   # beta[0], beta[1], log(sigma)
        ((5, 3), 0.0)
    """
    if not isinstance(draws, dict):
        draws = jnp.asarray(draws)
        if draws.ndim != 2:
            raise ValueError(f"flat draws must have shape (num_draws, dim), got {draws.shape}")
        return draws
    if model is None:
        raise ValueError(
            "a dict of draws holds constrained site values; pass the model and its arguments too, "
            "e.g. Gaussian.fit(mcmc.get_samples(), model, data), or pass a flat (n, d) array"
        )
    layout = site_layout(model, *model_args, **model_kwargs)
    missing = [site.name for site in layout if site.name not in draws]
    if missing:
        raise ValueError(f"the draws lack the latent site(s) {missing} of the model; layout:\n{layout}")
    latent = {site.name: jnp.asarray(draws[site.name]) for site in layout}

    def one(params):
        return layout.ravel(unconstrain_fn(model, model_args, model_kwargs, params))

    return jax.vmap(one)(latent)
