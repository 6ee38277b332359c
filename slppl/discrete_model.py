"""A NumPyro model whose latent sites are discrete: its potential on their values, and its draws.

SL runs on a finite set as on R^d (the observation channel ``y_t = t·x + B_t`` needs no change);
the latent vector is the sites' values themselves (no transform), each coordinate taking the
values of its site's support (a ``Categorical`` label is one coordinate with K values). Mean field
and TAP, and the two-point move, need two-valued sites whose log density is defined between the
values (Bernoulli); the inner Gibbs chain and the final product draw take any finite support. A model that mixes discrete and
continuous latent sites runs as a block of NumPyro's ``Gibbs`` (SL on the discrete sites
conditioned on the others, see :meth:`slppl.SL.refresh`); alone, it is refused with a message
saying so.
"""

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer.util import log_density

from .denoisers.inner_gibbs import InnerGibbs
from .denoisers.mean_field import MeanField
from .denoisers.tap import TAP
from .integrators import SecondOrder, TwoPoint
from .kernel import SLState
from .time_grids import Karras

__all__ = ["DiscreteModel", "DiscreteSLState", "DISCRETE_DENOISERS", "setup_discrete", "discrete_defaults", "build_denoiser",
           "default_denoiser", "denoiser_name", "with_fields", "core_state"]


class DiscreteModel(NamedTuple):
    """What the NumPyro adapter needs to run SL on a model's discrete latent sites.

    Fields:
        potential_fn_gen: ``(*model_args, **model_kwargs) -> U``, ``U(z) = −log p(data, z)`` on
            the dict of site values (floats).
        postprocess_fn_gen: ``(*model_args, **model_kwargs) -> f``, ``f(z)`` the sites as integers
            and the model's deterministic sites.
        init_params: a valid starting dict (the model's own draw).
        values: ``(d, K)`` each coordinate's values (NaN-padded), in ``ravel_pytree`` order of
            ``init_params``.
        relaxable: every site two-valued with a log density defined between its values (Bernoulli),
            as mean field and TAP need.
    """

    potential_fn_gen: Callable
    postprocess_fn_gen: Callable
    init_params: Any
    values: Any
    relaxable: bool


def setup_discrete(rng_key, model, model_args, model_kwargs, discrete):
    """A :class:`DiscreteModel` for ``model``, whose discrete latent sites are ``discrete``.

    Raises ``ValueError`` naming the sites when a continuous latent site is present or a discrete
    site has no finite support.
    """
    trace = handlers.trace(handlers.seed(model, rng_key)).get_trace(*model_args, **model_kwargs)
    latent = {name: site for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]}
    continuous = [name for name in latent if name not in discrete]
    if continuous:
        raise ValueError(
            f"SL samples models whose latent sites are all continuous or all discrete; this one has continuous "
            f"{continuous} and discrete {list(discrete)}. Compose SL on the discrete sites with NUTS on the rest: "
            "numpyro.infer.Gibbs([(SL(model), discrete_latent_sites), (NUTS(model), None)]) (discrete_latent_sites "
            "from numpyro.infer.gibbs), or marginalise the discrete sites out (enumeration, a mixture distribution)"
        )
    rows, init, integer = {}, {}, set()
    for name in discrete:
        site = latent[name]
        fn = site["fn"]
        while hasattr(fn, "base_dist"):  # .expand(...).to_event(...), masks: the same values
            fn = fn.base_dist
        if not getattr(fn, "has_enumerate_support", False):
            raise ValueError(
                f"site {name!r} ({type(fn).__name__}) has no finite support that SL can enumerate; its discrete kernel "
                "samples finite-support sites (Bernoulli, Categorical, DiscreteUniform, ...)"
            )
        support = np.unique(np.asarray(fn.enumerate_support(expand=False)).reshape(-1)).astype(float)
        if support.size < 2:
            raise ValueError(f"site {name!r} ({type(fn).__name__}) has a single value; make it a constant")
        value = jnp.asarray(site["value"], jnp.result_type(float))
        try:  # Bernoulli scores any real; Categorical indexes by its value and needs integers
            fn.log_prob(value)
        except (TypeError, IndexError):
            integer.add(name)
        init[name] = value
        rows[name] = np.broadcast_to(support, (value.size, support.size))

    def as_sites(z):
        """The latent vector's values as the model takes them."""
        return {name: v.astype(jnp.int32) if name in integer else v for name, v in z.items()}

    def potential_fn_gen(*args, **kwargs):
        def potential(z):
            return -log_density(model, args, kwargs, as_sites(z))[0]

        return potential

    def postprocess_fn_gen(*args, **kwargs):
        def postprocess(z):
            sites = as_sites(z)
            tr = handlers.trace(handlers.substitute(handlers.seed(model, 0), data=sites)).get_trace(*args, **kwargs)
            out = {name: z[name].astype(jnp.int32) for name in discrete}
            out.update({name: site["value"] for name, site in tr.items() if site["type"] == "deterministic"})
            return out

        return postprocess

    # ravel_pytree flattens a dict in sorted key order.
    width = max(r.shape[1] for r in rows.values())
    values = np.concatenate([np.pad(rows[name], ((0, 0), (0, width - rows[name].shape[1])), constant_values=np.nan)
                             for name in sorted(rows)], 0)
    return DiscreteModel(potential_fn_gen, postprocess_fn_gen, init, values, not integer and width == 2)


# The denoisers SL(model) builds on a discrete model's potential, by name (``SL(model, denoiser=...)``).
DISCRETE_DENOISERS = {"gibbs": InnerGibbs, "mean_field": MeanField, "tap": TAP}
NUM_STEPS = 50


def build_denoiser(name, discrete, potential_fn):
    """The denoiser ``name`` (a key of :data:`DISCRETE_DENOISERS`) on the :class:`DiscreteModel`
    ``discrete``'s potential ``potential_fn`` (on the dict of site values), flattened."""
    _, unravel = ravel_pytree(discrete.init_params)
    return DISCRETE_DENOISERS[name](lambda x: potential_fn(unravel(x)), discrete.values)


def denoiser_name(rng_key, family, discrete, model_args, model_kwargs):
    """The denoiser ``SL(model, denoiser=family)`` builds on a discrete model: the named one, or by
    default (``family`` ``"mixture"``, SL's default name) :func:`default_denoiser`'s choice."""
    if family in DISCRETE_DENOISERS:
        if family != "gibbs" and not discrete.relaxable:
            raise ValueError(
                f"denoiser={family!r} needs two-valued sites whose log density is defined between the values "
                "(Bernoulli); this model has Categorical or many-valued sites: use denoiser='gibbs' (or None)"
            )
        return family
    if not discrete.relaxable:
        return "gibbs"
    _, unravel = ravel_pytree(discrete.init_params)
    potential_fn = discrete.potential_fn_gen(*model_args, **model_kwargs)
    return default_denoiser(rng_key, lambda x: potential_fn(unravel(x)), discrete.values)


def default_denoiser(rng_key, potential_fn, values, num_points=2):
    """``"mean_field"`` where ``U`` is linear in each coordinate, else ``"gibbs"``.

    Mean field's local fields (``U``'s gradient at the relaxed means) are the exact changes of
    ``U`` when it is linear in each coordinate: pairwise models, indicators in a linear predictor.
    There it is cheap and good (4 × 4 Ising: acceptance 0.64 against the inner Gibbs chain's 0.26).
    Elsewhere its fields are wrong (collapsed spike-and-slab: acceptance 0.03–0.05 against about 0.8) and the
    inner Gibbs chain, which evaluates ``U`` only at configurations, is the default. Linearity is
    checked where it matters, by the Hessian's diagonal at ``num_points`` random interior points.
    """
    a, b = jnp.asarray(values[:, 0]), jnp.asarray(values[:, 1])
    grad = jax.grad(potential_fn)
    basis = jnp.eye(a.shape[0], dtype=a.dtype)
    with warnings.catch_warnings():  # NumPyro's validation objects to points between the values
        warnings.filterwarnings("ignore", "Out-of-support values")
        for key in jax.random.split(rng_key, num_points):
            m = a + (b - a) * jax.random.uniform(key, a.shape, a.dtype, 0.2, 0.8)
            curvature = jax.vmap(lambda e: jax.jvp(grad, (m,), (e,))[1] @ e)(basis)
            scale = 1.0 + jnp.max(jnp.abs(grad(m) * (b - a)))
            if not bool(jnp.max(jnp.abs(curvature * (b - a) ** 2)) <= 1e-6 * scale):
                return "gibbs"
    return "mean_field"


def discrete_defaults(num_steps, grid, integrator, num_proposals, values):
    """``(times, integrator, num_proposals)`` of ``SL(model)`` on a discrete model, from ``SL``'s
    arguments as given (``None``: the default) and the coordinates' ``values``.

    The move is :class:`~slppl.integrators.TwoPoint`, exact where the tilted law is a product, on
    two-valued sites; ``SecondOrder`` where some site has more values.
    The grid is ``Karras`` (50 steps): UniformOU's last step jumps from t = 3 to 1e4, from soft
    marginals to hard ones in one step (``examples/ising.py --grid ou``). One path per step, each
    costing ``num_steps`` mean-field solves.
    """
    times = (Karras() if grid is None else grid).times(NUM_STEPS if num_steps is None else num_steps)
    if integrator is None:  # with more values the mean no longer fixes each marginal
        integrator = TwoPoint(values) if values.shape[1] == 2 else SecondOrder()
    return times, integrator, 1 if num_proposals is None else int(num_proposals)


# NumPyro fixes a kernel's fields before it sees the model, so a discrete model's state carries
# SL(model)'s: no gradients, one model evaluation per proposal, no local or partial-path moves,
# the global move always on.
_REPORTED = ("num_grad_evals", "num_potential_evals", "local_accept_prob", "partial_accept_prob", "use_global")
DiscreteSLState = NamedTuple("DiscreteSLState", [(name, Any) for name in SLState._fields + _REPORTED])
DiscreteSLState.__doc__ = ":class:`~slppl.SLState` followed by the fields ``SL(model)``'s runs report."


def core_state(state):
    """The :class:`~slppl.SLState` inside a :class:`DiscreteSLState`."""
    return SLState(*state[:len(SLState._fields)])


def with_fields(state, num_proposals):
    """The core's state with ``SL(model)``'s fields."""
    zero = jnp.zeros((), state.accept_prob.dtype)
    return DiscreteSLState(*state, num_grad_evals=jnp.zeros((), jnp.int32),
                           num_potential_evals=jnp.asarray(num_proposals, jnp.int32), local_accept_prob=zero,
                           partial_accept_prob=zero, use_global=jnp.ones((), bool))
