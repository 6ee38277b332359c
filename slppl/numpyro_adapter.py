"""The NumPyro adapter: :class:`SL` wires the kernel core into ``numpyro.infer.MCMC``.

No mathematics here: the model becomes a potential on the flat unconstrained vector
(``initialize_model``), the core (:mod:`slppl.kernel`) does the rest.
"""

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import initialize_model
from numpyro.util import identity, is_prng_key

from . import kernel as core
from .denoisers.base import Denoiser, check_dim
from .integrators import Integrator, SecondOrder
from .layout import discrete_latent_sites
from .time_grids import Explicit, UniformOU

__all__ = ["SL"]

DEFAULT_NUM_STEPS = 50


class SL(MCMCKernel):
    """Stochastic-localization MCMC kernel for NumPyro.

    Every call to ``sample`` runs one SL trajectory ``dy = m(y, t) dt + dW`` from ``y_0 = 0`` on
    the grid, draws ``x`` at the end, and (with ``correction="mh"``) accepts it by independent
    Metropolis–Hastings on path space, which makes the kernel exact for any denoiser.

    The denoiser acts on the model's latent sites flattened into one vector in unconstrained space,
    in the order of ``jax.flatten_util.ravel_pytree`` over the unconstrained sample dict (sites
    sorted by name); :func:`slppl.site_layout` prints the layout.

    Args:
        model: a NumPyro model with continuous latent sites (exactly one of ``model`` and
            ``potential_fn``).
        potential_fn: ``U(z) = −log μ(z)`` on any pytree ``z`` (then ``init_params`` is required).
        denoiser: a :class:`~slppl.denoisers.Denoiser` for the flat unconstrained vector.
        num_steps: number of SL steps per proposal (default 50, or the length of an
            :class:`~slppl.time_grids.Explicit` grid).
        grid: a time grid (:mod:`slppl.time_grids`), default ``UniformOU(1e-3, 1e4)`` (unit-scale targets).
        integrator: default :class:`~slppl.integrators.SecondOrder`.
        correction: ``"mh"`` (exact, default) or ``None`` (raw SL draws, approximate).
        final: ``"gaussian"`` (default), ``"mean"`` or ``"sample"`` (the last two for raw draws
            only; see :func:`slppl.sample_trajectory`).
        cov_floor: added to ``Cov(x | y_K)`` in the final Gaussian draw, for a covariance that is
            numerically singular. Keep it well below ``1/t_K``: the path has located x to about
            that precision, and a wider final draw makes the exact weights collapse.
        init_strategy: NumPyro init strategy (the first finite proposal replaces it anyway).

    Example:
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
    """

    sample_field = "z"

    def __init__(
        self,
        model=None,
        potential_fn=None,
        *,
        denoiser,
        num_steps=None,
        grid=None,
        integrator=None,
        correction="mh",
        final="gaussian",
        cov_floor=0.0,
        init_strategy=init_to_uniform,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError("give exactly one of `model` and `potential_fn`")
        if not isinstance(denoiser, Denoiser):
            raise TypeError(f"denoiser must be an slppl Denoiser, got {type(denoiser).__name__}")
        integrator = SecondOrder() if integrator is None else integrator
        if not isinstance(integrator, Integrator):
            raise TypeError(f"integrator must be an slppl Integrator, got {type(integrator).__name__}")
        if not cov_floor >= 0:
            raise ValueError(f"cov_floor must be >= 0, got {cov_floor}")
        self._model = model
        self._potential_fn = potential_fn
        self.denoiser = denoiser
        self.grid = UniformOU() if grid is None else grid
        if num_steps is None and not isinstance(self.grid, Explicit):
            num_steps = DEFAULT_NUM_STEPS
        self.times = self.grid.times(num_steps)
        self.num_steps = int(self.times.size - 1)
        self.integrator = integrator
        self.correction = correction
        self.final = final
        self.cov_floor = float(cov_floor)
        self._init_strategy = init_strategy
        core.check_combination(denoiser, integrator, correction, final)
        self._potential_fn_gen = None
        self._postprocess_fn = None
        # NumPyro re-runs `init` while this is None (e.g. after unpickling). It caches its compiled
        # loop by this kernel object, so later `run`s on new data of the same shape reuse it as long
        # as `sample` reads the potential from its arguments and `init` keeps the state's types.
        self._sample_fn = None

    @property
    def model(self):
        return self._model

    @property
    def default_fields(self):
        return ("z", "diverging", "accept_prob", "potential_energy")

    def get_diagnostics_str(self, state):
        return f"acc. prob={float(jnp.mean(state.mean_accept_prob)):.2f}"

    def _setup_model(self, rng_key, model_args, model_kwargs, init_params):
        discrete = discrete_latent_sites(self._model, model_args, model_kwargs)
        if discrete:
            raise ValueError(
                f"SL needs continuous latent sites; {discrete} are discrete. Marginalise them out "
                "(e.g. with a mixture distribution) or observe them."
            )
        info = initialize_model(
            rng_key, self._model, dynamic_args=True, init_strategy=self._init_strategy,
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
        check_dim(self.denoiser, ravel_pytree(one)[0].shape[0])
        self._sample_fn = self._build_sampler(int(num_warmup), vectorized)
        potential_fn = self._get_potential_fn(model_args, model_kwargs)

        def init_one(z, key):
            return core.init(z, potential_fn, key, self.denoiser)

        if vectorized:
            return jax.vmap(init_one)(init_params, rng_key)
        return init_one(init_params, rng_key)

    def _get_potential_fn(self, model_args, model_kwargs):
        if self._potential_fn_gen is not None:
            return self._potential_fn_gen(*model_args, **model_kwargs)
        return self._potential_fn

    def _build_sampler(self, num_warmup, vectorized):
        step = core.build_kernel(
            self.denoiser, self.times, self.integrator, self.correction, self.final, self.cov_floor, num_warmup
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
        return state
