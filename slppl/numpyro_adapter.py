"""The NumPyro adapter: :class:`SL` wires the kernel core into ``numpyro.infer.MCMC``.

No mathematics here: the model becomes a potential on the flat unconstrained vector
(``initialize_model``), the core (:mod:`slppl.kernel`) does the rest.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.initialization import init_to_sample, init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import find_valid_initial_params, initialize_model
from numpyro.util import identity, is_prng_key

from . import adaptation
from . import kernel as core
from .denoisers.base import check_dim
from .discrete_model import (
    DISCRETE_DENOISERS, DiscreteSLState, build_denoiser, core_state, denoiser_name, discrete_defaults, setup_discrete,
    with_fields,
)
from .layout import discrete_latent_sites
from .options import resolve
from .tempering import BETA, tempered_model

__all__ = ["SL"]

class SL(MCMCKernel):
    """Stochastic-localization MCMC kernel for NumPyro.

    Every call to ``sample`` runs one SL trajectory ``dy = m(y, t) dt + dW`` from ``y_0 = 0`` on
    the grid, draws ``x`` at the end, and (with ``correction="mh"``) accepts it by independent
    Metropolis–Hastings on path space, which makes the kernel exact for any denoiser.

    The denoiser acts on the model's latent sites flattened into one vector in unconstrained space,
    in the order of ``jax.flatten_util.ravel_pytree`` over the unconstrained sample dict (sites
    sorted by name); :func:`slppl.site_layout` prints the layout.

    Args:
        model: a NumPyro model whose latent sites are all continuous, or all discrete with a
            finite support (Bernoulli, Categorical: then the sites' values are the latent vector,
            ``final="product"`` and the grid ``Karras``; see :mod:`slppl.discrete_model`). A model
            with both runs SL on its discrete sites as a block of NumPyro's ``Gibbs``
            (:meth:`refresh`). Exactly one of ``model`` and ``potential_fn``.
        potential_fn: ``U(z) = −log μ(z)`` on any pytree ``z`` (then ``init_params`` is required).
        denoiser: a :class:`~slppl.denoisers.Denoiser` for the flat unconstrained vector, or
            ``None`` / ``"mixture"`` / ``"gaussian"`` / ``"laplace"`` / ``"learned"``: the kernel
            then builds its own denoiser of that family during warmup (:mod:`slppl.adaptation`;
            ``None`` means ``"mixture"``; ``"laplace"`` is ``N(MAP, H⁻¹)`` found from the best
            walker, or the walkers' Gaussian where no minimum is found; ``"learned"`` is the
            mixture plus a residual network (:class:`~slppl.denoisers.Learned`, needs
            ``slppl[learn]``) trained at the refit, kept only if it lowers the variance of the
            exact log weights, with paths integrated by ``SecondOrder``) and mixes exact global
            SL moves with local NUTS moves. On a discrete model: ``"mean_field"``, ``"tap"`` or
            ``"gibbs"`` (:class:`~slppl.denoisers.MeanField`, :class:`~slppl.denoisers.TAP`,
            :class:`~slppl.denoisers.InnerGibbs` on the model's potential); by default mean field
            where the log density is linear in each coordinate, the inner Gibbs chain elsewhere
            (:func:`slppl.discrete_model.default_denoiser`).
        num_steps: number of SL steps per proposal (default 50 with a given denoiser; with a
            built denoiser the path is drawn exactly and steps do not matter, unless another
            integrator is given: then 25 for a mixture, 1 for a Gaussian; or the length of an
            :class:`~slppl.time_grids.Explicit` grid).
        grid: a time grid (:mod:`slppl.time_grids`), default ``UniformOU(1e-3, 1e4)`` for unit-scale
            targets; with a given denoiser whose measure has a coordinate of variance σ² < 1
            (``denoiser.marginal_variance()``), its times are multiplied by ``1/σ²``, so the path
            still localises x at that scale.
        integrator: default :class:`~slppl.integrators.SecondOrder` with a given denoiser,
            :class:`~slppl.integrators.Exact` with a built one.
        correction: ``"mh"`` (exact, default) or ``None`` (raw SL draws, approximate).
        final: ``"gaussian"`` (default), ``"product"`` (each coordinate from its marginal on a
            finite set: discrete latents with a discrete denoiser), ``"mean"`` or ``"sample"``
            (the last two for raw draws only; see :func:`slppl.sample_trajectory`).
        cov_floor: added to ``Cov(x | y_K)`` in the final Gaussian draw, for a covariance that is
            numerically singular. Keep it well below ``1/t_K``: the path has located x to about
            that precision, and a wider final draw makes the exact weights collapse.
        init_strategy: NumPyro init strategy (the first finite proposal replaces it anyway).
        num_walkers: local chains exploring during warmup when the kernel builds its denoiser.
        num_local: local NUTS moves after each global proposal when the kernel builds its
            denoiser. ``None`` (default): one during warmup, kept after warmup only if the global
            steps left the current point less than 90 % of the time in warmup; 0: global steps only.
        num_proposals: SL paths per step. With more than one, the next point is picked among
            them and the current one in proportion to their exact weights (i-SIR, exact too; see
            :func:`slppl.kernel.imh_proposal`): the paths are evaluated in one batch and the
            chain moves far more often. Default ``DEFAULT_PROPOSALS`` (32) with a built denoiser,
            whose paths cost one model evaluation each, and 1 with a given denoiser, whose paths
            cost ``num_steps`` denoiser calls.
        target_accept_prob: target of the local NUTS step-size adaptation.

    With a built denoiser, ``num_warmup`` must be at least 100: the first quarter (at least 50
    steps) explores with the walkers, the fit comes next, the rest runs the composite kernel;
    everything is frozen after warmup. Extra fields ``proposal_log_weight`` (for :func:`slppl.diagnostics.pareto_khat`),
    ``num_grad_evals``, ``num_potential_evals`` and ``local_accept_prob`` are collected by default.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> from numpyro.infer import MCMC
        >>> from slppl import SL
        >>> from slppl.denoisers import Gaussian
        >>> def model():
        ...     numpyro.sample("x", dist.Normal(jnp.zeros(2), 1.0))
        >>> kernel = SL(model, denoiser=Gaussian(jnp.zeros(2), jnp.eye(2)), num_steps=10)
        >>> mcmc = MCMC(kernel, num_warmup=10, num_samples=100, progress_bar=False)
        >>> mcmc.run(jax.random.PRNGKey(0))
        >>> mcmc.get_samples()["x"].shape
        (100, 2)
        >>> mcmc = MCMC(SL(model), num_warmup=100, num_samples=100, progress_bar=False)  # builds its denoiser
        >>> mcmc.run(jax.random.PRNGKey(1))
        >>> mcmc.get_samples()["x"].shape
        (100, 2)
    """

    sample_field = "z"

    def __init__(
        self,
        model=None,
        potential_fn=None,
        *,
        denoiser=None,
        num_steps=None,
        grid=None,
        integrator=None,
        correction="mh",
        final="gaussian",
        cov_floor=0.0,
        init_strategy=init_to_uniform,
        num_walkers=16,
        num_local=None,
        num_proposals=None,
        target_accept_prob=0.8,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError("give exactly one of `model` and `potential_fn`")
        self._model = model
        self._potential_fn = potential_fn
        self._init_strategy = init_strategy
        opts = resolve(denoiser, num_steps, grid, integrator, correction, final, cov_floor, num_walkers, num_local,
                       num_proposals, target_accept_prob)
        self.__dict__.update(opts._asdict())
        # A model with discrete latent sites is only known at init; it runs its own grid and steps.
        self._discrete = None
        self._discrete_name = None  # the denoiser SL builds on a discrete model (discrete_model.DISCRETE_DENOISERS)
        self._discrete_args = (num_steps, grid, integrator, num_proposals)
        self._potential_fn_gen = None
        self._postprocess_fn = None
        # NumPyro re-runs `init` while this is None (e.g. after unpickling). It caches its compiled
        # loop by this kernel object, so later `run`s on new data of the same shape reuse it as long
        # as `sample` reads the potential from its arguments and `init` keeps the state's types.
        self._sample_fn = None
        self._adaptive_cache = {}

    @property
    def model(self):
        return self._model

    @property
    def default_fields(self):
        # The proposals' weights are cheap to keep and are what check_sl's Pareto k̂ reads.
        fields = ("z", "diverging", "accept_prob", "potential_energy", "proposal_log_weight")
        if self.family is not None:
            fields += ("num_grad_evals", "num_potential_evals", "local_accept_prob", "partial_accept_prob", "use_global")
        return fields

    def get_diagnostics_str(self, state):
        text = f"acc. prob={float(jnp.mean(state.mean_accept_prob)):.2f}"
        if self.family is not None and self._discrete is None:  # discrete models have no local moves
            text += f", local acc. prob={float(jnp.mean(state.local_accept_prob)):.2f}"
        return text

    def _setup_model(self, rng_key, model_args, model_kwargs, init_params):
        discrete = discrete_latent_sites(self._model, *model_args, **(model_kwargs or {}))
        if discrete:
            # Every chain starts at one draw of the model: the first proposal replaces it anyway.
            batched = not is_prng_key(rng_key)
            self._discrete = setup_discrete(rng_key[0] if batched else rng_key, self._model, model_args,
                                            model_kwargs or {}, discrete)
            if self.family is not None and self.family != "mixture" and self.family not in DISCRETE_DENOISERS:
                raise ValueError(
                    f"denoiser={self.family!r} fits continuous latents, but the latent sites {discrete} are discrete: "
                    f"give no denoiser, one of {sorted(DISCRETE_DENOISERS)}, or a discrete one (Discrete, MeanField, "
                    "TAP, InnerGibbs) with final='product'"
                )
            if self.family is None and self.final != "product":
                raise ValueError(
                    f"the latent sites {discrete} are discrete: SL's draw must land on their values. Give no "
                    "denoiser, or a discrete one (Discrete, MeanField, TAP, InnerGibbs) with final='product'"
                )
            self._potential_fn_gen = self._discrete.potential_fn_gen
            self._postprocess_fn = self._discrete.postprocess_fn_gen
            if self.family is not None:  # chosen once, on this model's potential
                self._discrete_name = denoiser_name(rng_key[0] if batched else rng_key, self.family, self._discrete,
                                                    model_args, model_kwargs or {})
            if init_params is not None:  # NumPyro's Gibbs passes the sites' values as they are (integers)
                return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.result_type(float)), init_params)
            z = self._discrete.init_params
            return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (rng_key.shape[0],) + a.shape), z) if batched else z
        if self.family in DISCRETE_DENOISERS:
            raise ValueError(f"denoiser={self.family!r} is for discrete latent sites, and this model's are continuous; "
                             f"give None or one of {sorted(adaptation.FAMILIES)}")
        # The tempered wrapper is the model itself unless called with β (the walkers' exploration).
        info = initialize_model(
            rng_key, tempered_model(self._model), dynamic_args=True, init_strategy=self._init_strategy,
            model_args=model_args, model_kwargs=model_kwargs,
        )
        self._potential_fn_gen = info.potential_fn
        self._postprocess_fn = info.postprocess_fn
        return info.param_info.z if init_params is None else init_params

    def init(self, rng_key, num_warmup, init_params=None, model_args=(), model_kwargs={}):
        vectorized = not is_prng_key(rng_key)
        if vectorized:
            rng_key, key_model = jnp.swapaxes(jax.vmap(jax.random.split)(rng_key), 0, 1)
        else:
            rng_key, key_model = jax.random.split(rng_key)
        if self._model is not None:
            init_params = self._setup_model(key_model, model_args, model_kwargs, init_params)
        elif init_params is None:
            raise ValueError("`init_params` must be given with `potential_fn`")

        one = jax.tree_util.tree_map(lambda a: a[0], init_params) if vectorized else init_params
        potential_fn = self._get_potential_fn(model_args, model_kwargs)
        if self._discrete is not None:
            return self._init_discrete(rng_key, init_params, int(num_warmup), vectorized, model_args, model_kwargs)
        if self.family is not None:
            return self._init_adaptive(rng_key, init_params, int(num_warmup), vectorized,
                                       model_args, model_kwargs)
        check_dim(self.denoiser, ravel_pytree(one)[0].shape[0])
        denoiser = self.denoiser
        if self._model is not None and hasattr(denoiser, "check_layout"):
            denoiser.check_layout(self._model, *model_args, **model_kwargs)  # a saved Learned's sites
        if self._model is not None and hasattr(denoiser, "condition_on_model"):
            # An amortized denoiser's context (this run's data) lives in the state, not in the
            # compiled sampler, which later runs on other data sets reuse.
            denoiser = denoiser.condition_on_model(self._model, *model_args, **model_kwargs)
        self._sample_fn = self._build_sampler(int(num_warmup), vectorized)

        def init_one(z, key):
            return core.init(z, potential_fn, key, denoiser, self.num_proposals)

        if vectorized:
            return jax.vmap(init_one)(init_params, rng_key)
        return init_one(init_params, rng_key)

    def _proposal(self, potential_fn):
        """``(denoiser, times, integrator, final, num_proposals)`` of the fixed kernel: as given, or
        on a discrete model, the named denoiser on the model's potential (built here, since the
        potential depends on the model's arguments)."""
        if self._discrete is None or self.family is None:
            return self.denoiser, self.times, self.integrator, self.final, self.num_proposals
        denoiser = build_denoiser(self._discrete_name, self._discrete, potential_fn)
        times, integrator, num_proposals = discrete_defaults(*self._discrete_args, self._discrete.values)
        return denoiser, times, integrator, "product", num_proposals

    def _discrete_kernel(self, num_warmup, potential_fn):
        """The core kernel on the discrete sites' values."""
        denoiser, times, integrator, final, num_proposals = self._proposal(potential_fn)
        step = core.build_kernel(denoiser, times, integrator, self.correction, final, self.cov_floor, num_warmup,
                                 num_proposals)
        return denoiser, step, num_proposals

    def refresh(self, state, model_args, model_kwargs):
        """The state at the same point under the target that ``(model_args, model_kwargs)`` now define:
        a block of NumPyro's ``Gibbs`` whose sibling blocks have moved (:func:`slppl.kernel.reweigh`).

        For example SL on a model's discrete sites and NUTS on its continuous ones::

            Gibbs([(SL(model), discrete_latent_sites), (NUTS(model), None)])
        """
        if self.family is not None and self._discrete is None:
            raise NotImplementedError(
                "SL(model) building its own denoiser fits it to one target during warmup, so it cannot follow a "
                "target that a Gibbs composite keeps changing; as a Gibbs block give SL a denoiser, or use it on "
                "the model's discrete sites (SL(model) builds its denoiser on the current conditional)"
            )
        if self.correction is None:
            return state  # raw draws carry no weight
        potential_fn = self._get_potential_fn(model_args, model_kwargs)
        denoiser, times, integrator, final, _ = self._proposal(potential_fn)
        core_part = core_state(state) if isinstance(state, DiscreteSLState) else state
        new = core.reweigh(core_part, potential_fn, denoiser, times, integrator, final, self.cov_floor)
        return type(state)(*new, *state[len(new):])

    def wrap_model(self, wrapper):
        """A copy of this kernel on ``wrapper(model)`` (how NumPyro's ``Gibbs`` conditions a block)."""
        if self._model is None:
            return self
        kernel = copy.copy(self)
        kernel._model = wrapper(self._model)
        kernel._discrete = None
        kernel._potential_fn_gen = kernel._postprocess_fn = kernel._sample_fn = None
        kernel._adaptive_cache = {}
        return kernel

    def _init_discrete(self, rng_key, init_params, num_warmup, vectorized, model_args, model_kwargs):
        def init_one(z, key, model_args, model_kwargs):
            potential_fn = self._get_potential_fn(model_args, model_kwargs)
            denoiser, _, num_proposals = self._discrete_kernel(num_warmup, potential_fn)
            state = core.init(z, potential_fn, key, denoiser, num_proposals)
            return with_fields(state, num_proposals) if self.family is not None else state

        def sample(state, model_args, model_kwargs):
            potential_fn = self._get_potential_fn(model_args, model_kwargs)
            _, step, num_proposals = self._discrete_kernel(num_warmup, potential_fn)
            if self.family is None:
                return step(state, potential_fn)
            return with_fields(step(core_state(state), potential_fn), num_proposals)

        self._sample_fn = jax.vmap(sample, in_axes=(0, None, None)) if vectorized else sample
        if vectorized:
            return jax.vmap(init_one, in_axes=(0, 0, None, None))(init_params, rng_key, model_args, model_kwargs)
        return init_one(init_params, rng_key, model_args, model_kwargs)

    def _init_adaptive(self, rng_key, init_params, num_warmup, vectorized, model_args, model_kwargs):
        # One compiled init (walkers' starts and NUTS set-up included) instead of hundreds of eager
        # ops; cached, like the sampler, so later runs on new data of the same shapes compile nothing.
        traced_args = all(isinstance(a, (jax.Array, np.ndarray)) for a in jax.tree_util.tree_leaves((model_args, model_kwargs)))
        cache_key = (num_warmup, vectorized)
        if not traced_args or cache_key not in self._adaptive_cache:
            built = self._build_adaptive(num_warmup, vectorized, None if traced_args else (model_args, model_kwargs))
            if not traced_args:
                init_fn, self._sample_fn = built
                return init_fn(init_params, rng_key, (), {})
            self._adaptive_cache[cache_key] = built
        init_fn, self._sample_fn = self._adaptive_cache[cache_key]
        return init_fn(init_params, rng_key, model_args, model_kwargs)

    def _build_adaptive(self, num_warmup, vectorized, fixed_args=None):
        """``(init_fn, sample_fn)`` of the adaptive kernel; the model's arguments are read from the
        call, or fixed (``(model_args, model_kwargs)``) when some are not arrays and cannot be traced."""
        sched = adaptation.schedule(num_warmup, self.num_walkers)
        components = adaptation.FAMILIES[self.family]
        local_kernel = adaptation.make_local_kernel()
        step = adaptation.build_kernel(sched, self.family, self.times, self.integrator, local_kernel,
                                       self.num_local, batched=vectorized, num_proposals=self.num_proposals)

        def init_one(z, key, model_args, model_kwargs):
            if fixed_args is not None:
                model_args, model_kwargs = fixed_args
            key, key_walkers = jax.random.split(key)
            walkers = self._walker_positions(key_walkers, z, model_args, model_kwargs)
            return adaptation.init(key, z, walkers, self._get_potential_fn(model_args, model_kwargs), sched,
                                   components, local_kernel, self.target_accept_prob, self.num_proposals,
                                   learned=self.family == "learned",
                                   tempered=self._get_tempered_fn(model_args, model_kwargs))

        def sample(state, model_args, model_kwargs):
            return step(state, self._get_potential_fn(model_args, model_kwargs),
                        self._get_tempered_fn(model_args, model_kwargs))

        init_fn = jax.vmap(init_one, in_axes=(0, 0, None, None)) if vectorized else init_one
        return jax.jit(init_fn), sample

    def _walker_positions(self, rng_key, z, model_args, model_kwargs):
        """Dispersed starting points: prior draws for a model (NumPyro's own search for a valid
        start, ``init_to_sample``), uniform on ±2 around ``z`` for a potential."""
        keys = jax.random.split(rng_key, self.num_walkers)
        if self._model is not None:
            (walkers, _, _), _ = find_valid_initial_params(
                keys, self._model, init_strategy=init_to_sample, model_args=model_args, model_kwargs=model_kwargs,
                prototype_params=z,
            )
            return walkers
        flat, unravel = ravel_pytree(z)
        return jax.vmap(lambda key: unravel(flat + jax.random.uniform(key, flat.shape, flat.dtype, -2.0, 2.0)))(keys)

    def _get_tempered_fn(self, model_args, model_kwargs):
        """``β ↦`` the potential of ``prior·likelihood^β`` for a model; ``None`` for a potential."""
        if self._potential_fn_gen is None:
            return None
        return lambda beta: self._potential_fn_gen(*model_args, **{**model_kwargs, BETA: beta})

    def _get_potential_fn(self, model_args, model_kwargs):
        if self._potential_fn_gen is not None:
            return self._potential_fn_gen(*model_args, **model_kwargs)
        return self._potential_fn

    def _build_sampler(self, num_warmup, vectorized):
        step = core.build_kernel(
            self.denoiser, self.times, self.integrator, self.correction, self.final, self.cov_floor, num_warmup,
            self.num_proposals,
        )

        def sample(state, model_args, model_kwargs):
            return step(state, self._get_potential_fn(model_args, model_kwargs))

        return jax.vmap(sample, in_axes=(0, None, None)) if vectorized else sample

    def sample(self, state, model_args, model_kwargs):
        if self._sample_fn is None:
            raise RuntimeError("`init` must be called before `sample`")
        return self._sample_fn(state, model_args, model_kwargs)

    def postprocess_fn(self, model_args, model_kwargs):
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*model_args, **model_kwargs)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_sample_fn"] = None
        state["_adaptive_cache"] = {}
        return state
