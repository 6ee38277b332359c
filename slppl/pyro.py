"""The Pyro adapter: :class:`SL` as a ``pyro.infer.mcmc.MCMCKernel``.

One core, not two: the JAX engine that the NumPyro kernel runs (:mod:`slppl.kernel`, and
:mod:`slppl.adaptation` when the kernel builds its denoiser) runs here unchanged, on the flat
unconstrained vector. Only the model's potential and its gradient come from torch: Pyro's
``initialize_model`` gives the potential on unconstrained tensors, and ``jax.pure_callback`` calls
it from inside the compiled JAX step (the gradient through a ``custom_vjp``, for the adaptive
kernel's NUTS moves). A torch copy of the mathematics would drift from the JAX one; the price is
a host callback per potential evaluation (``benchmarks/pyro_vs_nuts.py`` measures it).

Needs the extra ``slppl[pyro]`` (torch, pyro-ppl); ``import slppl`` never imports torch.
"""

import threading
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import torch
from pyro import poutine
from pyro.infer.autoguide.initialization import init_to_uniform
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from pyro.infer.mcmc.util import initialize_model

from . import adaptation
from . import kernel as core
from .denoisers.base import check_dim
from .options import resolve
from .pyro_potential import batched_potential

__all__ = ["SL", "to_arviz"]


class SL(MCMCKernel):
    """Stochastic-localization MCMC kernel for Pyro: ``pyro.infer.MCMC(SL(model), ...)``.

    The same arguments and denoisers as :class:`slppl.SL` (the NumPyro kernel; see there), on
    the same flat vector: the model's latent sites in unconstrained space, sorted by name, each
    flattened row-major (:func:`slppl.site_layout` of the NumPyro twin of the model prints it).
    ``SL(model)`` with no denoiser builds one during ``warmup_steps`` as the NumPyro kernel does
    (``warmup_steps >= 100``).

    Args:
        model: a Pyro model with continuous latent sites (or discrete ones marked
            ``infer={"enumerate": "parallel"}``, which Pyro's potential sums out), or
        potential_fn: ``U(params)`` on a dict of unconstrained torch tensors (then
            ``initial_params`` must be given to ``MCMC``).
        transforms, max_plate_nesting, init_strategy: as for Pyro's ``NUTS``.
        jit_compile, ignore_jit_warnings: as for Pyro's ``NUTS``: ``jit_compile=True`` traces the
            potential with the PyTorch JIT, and the batched potential (``slppl.pyro_potential``)
            once per batch size. On eight schools a potential took 0.09 ms instead of 1.14 ms
            (value and gradient 0.62 ms instead of 1.88 ms).
        **options: ``denoiser``, ``num_steps``, ``grid``, ``integrator``, ``correction``, ``final``,
            ``cov_floor``, ``num_walkers``, ``num_local``, ``num_proposals``, ``target_accept_prob``:
            as for :class:`slppl.SL`.

    The JAX key of each chain is drawn from torch's generator at ``setup``, so
    ``pyro.set_rng_seed`` makes a run reproducible.

    Examples:
        >>> import torch, pyro, pyro.distributions as dist
        >>> from pyro.infer import MCMC
        >>> import numpy as np
        >>> from slppl.denoisers import Gaussian
        >>> import slppl.pyro
        >>> def model():
        ...     pyro.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        >>> kernel = slppl.pyro.SL(model, denoiser=Gaussian(np.zeros(2), np.eye(2)), num_steps=10)
        >>> mcmc = MCMC(kernel, num_samples=100, warmup_steps=10, disable_progbar=True)
        >>> pyro.set_rng_seed(0); mcmc.run()
        >>> mcmc.get_samples()["x"].shape
        torch.Size([100, 2])
    """

    def __init__(self, model=None, potential_fn=None, *, denoiser=None, num_steps=None, grid=None, integrator=None,
                 correction="mh", final="gaussian", cov_floor=0.0, num_walkers=16, num_local=None, num_proposals=None,
                 target_accept_prob=0.8, transforms=None, max_plate_nesting=None, init_strategy=init_to_uniform,
                 jit_compile=False, ignore_jit_warnings=False):
        if (model is None) == (potential_fn is None):
            raise ValueError("give exactly one of `model` and `potential_fn`")
        opts = resolve(denoiser, num_steps, grid, integrator, correction, final, cov_floor, num_walkers, num_local,
                       num_proposals, target_accept_prob)
        if opts.family is None and hasattr(denoiser, "condition_on_model"):
            raise ValueError("amortized denoisers read a NumPyro model's observed sites; use slppl.SL (NumPyro) "
                             "with them, or condition one yourself (den.condition(data)) and pass that")
        self.__dict__.update(opts._asdict())
        self.model = model
        self.potential_fn = potential_fn
        self.transforms = transforms
        self._max_plate_nesting = max_plate_nesting
        self._init_strategy = init_strategy
        self._jit_compile = jit_compile
        self._ignore_jit_warnings = ignore_jit_warnings
        self._host = _TorchPotential()
        # Compiled (init, step) programs by (warmup steps, dimension, dtype): MCMC runs sequential
        # chains through this one kernel object, and the potential is read through the host
        # callback, so every chain after the first reuses them.
        self._programs = {}
        self._initial_params = None
        self._reset()

    def _reset(self):
        self._state = None
        self._t = 0
        self._warmup_steps = None
        self._accept_sum = 0.0
        self._divergences = []

    @property
    def initial_params(self):
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params):
        self._initial_params = params

    # ------------------------------------------------------------------ Pyro's protocol
    def setup(self, warmup_steps, *args, **kwargs):
        self._reset()
        self._warmup_steps = int(warmup_steps)
        if self.model is not None:
            _check_discrete(self.model, args, kwargs)
            init_params, potential_fn, transforms, _ = initialize_model(
                self.model, args, kwargs, transforms=self.transforms, max_plate_nesting=self._max_plate_nesting,
                init_strategy=self._init_strategy, initial_params=self._initial_params, jit_compile=self._jit_compile,
                skip_jit_warnings=self._ignore_jit_warnings,
            )
            self._potential, self.transforms, self._initial_params = potential_fn, transforms, init_params
        else:
            if not self._initial_params:
                raise ValueError("`initial_params` must be given to MCMC with `potential_fn`")
            self._potential = self.potential_fn
        params = {k: v.detach() for k, v in self._initial_params.items()}
        batched = None
        if self.model is not None:
            with self._host.lock:
                batched = batched_potential(self.model, args, kwargs, self.transforms, params, self._potential,
                                            self._max_plate_nesting, self._jit_compile, self._ignore_jit_warnings)
        self._host.set(self._potential, params, batched)
        dim = self._host.dim
        if self.family is None:
            check_dim(self.denoiser, dim)
        dtype = jnp.asarray(0.0).dtype  # float64 under jax_enable_x64
        key = jax.random.PRNGKey(int(torch.randint(0, 2**31 - 1, ()).item()))
        flat = jnp.asarray(self._host.ravel(params), dtype)
        init_fn, self._step = self._compiled(dim, dtype)
        if self.family is None:
            self._state = init_fn(flat, key)
        else:
            walkers = jnp.asarray(self._walker_positions(args, kwargs, flat), dtype)
            self._state = init_fn(flat, walkers, key)

    def sample(self, params):
        if self._state is None:
            raise RuntimeError("`setup` must be called before `sample`")
        self._state = self._step(self._state)
        self._t += 1
        if self._t > self._warmup_steps:
            self._accept_sum += float(self._state.accept_prob)
            if bool(self._state.diverging):
                self._divergences.append(self._t - self._warmup_steps - 1)
        return self._host.unravel(np.asarray(self._state.z))

    def logging(self):
        n = self._t - self._warmup_steps if self._warmup_steps is not None else 0
        acc = self._accept_sum / n if n > 0 else float(self._state.accept_prob) if self._state is not None else 0.0
        return OrderedDict([("acc. prob", f"{acc:.3f}")])

    def diagnostics(self):
        n = max(self._t - (self._warmup_steps or 0), 1)
        return {"divergences": self._divergences, "acceptance rate": self._accept_sum / n}

    def cleanup(self):
        self._reset()
        # As Pyro's HMC: the next chain draws its own start unless MCMC sets one before `setup`.
        self._initial_params = None

    def __getstate__(self):
        # For Pyro's worker processes (mp_context="spawn"): compiled programs and the torch
        # potential are rebuilt in the worker by `setup`.
        state = self.__dict__.copy()
        state.update(_programs={}, _state=None, _host=None)
        state.pop("_potential", None)
        state.pop("_step", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._host = _TorchPotential()

    # ------------------------------------------------------------------ wiring
    def _compiled(self, dim, dtype):
        cache_key = (self._warmup_steps, dim, jnp.dtype(dtype).name, self._host.batched is not None)
        if cache_key not in self._programs:
            self._programs[cache_key] = self._build(dim, dtype)
        return self._programs[cache_key]

    def _build(self, dim, dtype):
        potential = self._host.jax_potential(dim, dtype)
        if self.family is None:
            step = core.build_kernel(self.denoiser, self.times, self.integrator, self.correction, self.final,
                                     self.cov_floor, self._warmup_steps, self.num_proposals,
                                     proposal_chunk=self.num_proposals)

            def init_given(flat, key):
                return core.init(flat, potential, key, self.denoiser, self.num_proposals)

            return jax.jit(init_given), jax.jit(lambda state: step(state, potential))
        sched = adaptation.schedule(self._warmup_steps, self.num_walkers)
        local_kernel = adaptation.make_local_kernel()
        step = adaptation.build_kernel(sched, self.family, self.times, self.integrator, local_kernel, self.num_local,
                                       num_proposals=self.num_proposals, proposal_chunk=self.num_proposals,
                                       # Walkers in lockstep wait for the longest NUTS tree: worth it
                                       # only when a batch is one torch call, not one per row.
                                       vectorized_walkers=self._host.batched is not None)

        def init_adaptive(flat, walkers, key):
            return adaptation.init(key, flat, walkers, potential, sched, adaptation.FAMILIES[self.family],
                                   local_kernel, self.target_accept_prob, self.num_proposals,
                                   learned=self.family == "learned")

        return jax.jit(init_adaptive), jax.jit(lambda state: step(state, potential))

    def _walker_positions(self, args, kwargs, flat):
        """Prior draws, unconstrained, for a model; uniform on ±2 around the start for a potential."""
        if self.model is None:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            return np.asarray(flat) + rng.uniform(-2.0, 2.0, (self.num_walkers, flat.shape[0]))
        rows = []
        for _ in range(self.num_walkers):
            trace = poutine.trace(poutine.block(self.model, hide_types=["param"])).get_trace(*args, **kwargs)
            params = {name: self.transforms[name](trace.nodes[name]["value"]) if name in self.transforms
                      else trace.nodes[name]["value"] for name in self._host.names}
            rows.append(self._host.ravel({k: v.detach() for k, v in params.items()}))
        return np.stack(rows)


def to_arviz(mcmc):
    """ArviZ data of a ``pyro.infer.MCMC`` run: ``az.from_pyro`` on ArviZ 0.x; on ArviZ 1.x, which
    has no ``from_pyro``, ``az.from_dict`` of the draws by chain and the ``diverging`` flags.

    Examples:
        >>> idata = to_arviz(mcmc)  # doctest: +SKIP
    """
    import arviz as az

    if hasattr(az, "from_pyro"):
        return az.from_pyro(mcmc)
    return az.from_dict(pyro_groups(mcmc))


def pyro_groups(mcmc):
    """``{"posterior": {site: (chain, draw, ...)}, "sample_stats": {"diverging": (chain, draw)}}`` of
    a Pyro run, as numpy arrays: what ``az.from_dict`` takes on ArviZ 1.x."""
    samples = {k: v.detach().cpu().numpy() for k, v in mcmc.get_samples(group_by_chain=True).items()}
    chains, draws = next(iter(samples.values())).shape[:2]
    diverging = np.zeros((chains, draws), bool)
    for c, steps in enumerate(mcmc.diagnostics().get("divergences", {}).values()):
        diverging[c, np.asarray(steps, int)] = True
    return {"posterior": samples, "sample_stats": {"diverging": diverging}}


class _TorchPotential:
    """The host side of the potential: torch evaluations on flat numpy vectors, called from JAX."""

    def __init__(self):
        self.fn = None
        self.batched = None
        self.names, self.shapes = [], []
        # XLA may run callbacks from several threads at once; a Pyro potential is not re-entrant
        # (its handlers refuse to be entered twice: "cannot install a Messenger instance twice").
        self.lock = threading.Lock()

    def set(self, fn, params, batched=None):
        self.fn = fn
        # U on a batch in one torch call (slppl.pyro_potential), or None: row by row.
        self.batched = batched
        self.names = sorted(params)
        self.shapes = [tuple(params[n].shape) for n in self.names]
        self.torch_dtype = params[self.names[0]].dtype if self.names else torch.get_default_dtype()
        self.dim = int(sum(int(np.prod(s)) for s in self.shapes))

    def ravel(self, params):
        return np.concatenate([np.asarray(params[n].detach().cpu(), dtype=np.float64).reshape(-1) for n in self.names])

    def unravel(self, flat, requires_grad=False, batch=False):
        """Torch tensors by site of one flat vector, or (``batch=True``) of the rows of ``flat``,
        each with a leading batch axis."""
        rows = np.asarray(flat).reshape(-1, flat.shape[-1])
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            size = int(np.prod(shape))
            value = rows[:, start:start + size].reshape((-1,) + shape)
            t = torch.tensor(value if batch else value[0], dtype=self.torch_dtype)
            out[name] = t.requires_grad_(requires_grad)
            start += size
        return out

    def value(self, flat):
        if flat.ndim > 1 and self.batched is not None:  # a batch (vmapped): one torch call
            with self.lock, torch.no_grad():
                u = self.batched(self.unravel(flat, batch=True))
            return u.numpy().astype(flat.dtype).reshape(flat.shape[:-1])
        if flat.ndim > 1:  # a batch of proposals (vmapped): one host round trip for all of them
            return np.stack([self.value(row) for row in flat.reshape(-1, flat.shape[-1])]).reshape(flat.shape[:-1])
        with self.lock, torch.no_grad():
            u = self.fn(self.unravel(flat))
        return np.asarray(float(u), dtype=flat.dtype)

    def value_and_grad(self, flat):
        if flat.ndim > 1 and self.batched is not None:
            z = self.unravel(flat, requires_grad=True, batch=True)
            with self.lock:
                u = self.batched(z)
                grads = torch.autograd.grad(u.sum(), [z[n] for n in self.names], allow_unused=True)
            n = u.shape[0]
            g = [torch.zeros(n, int(np.prod(s)), dtype=self.torch_dtype) if gr is None else gr.detach().reshape(n, -1)
                 for gr, s in zip(grads, self.shapes)]
            return (u.detach().numpy().astype(flat.dtype).reshape(flat.shape[:-1]),
                    torch.cat(g, 1).numpy().astype(flat.dtype).reshape(flat.shape))
        if flat.ndim > 1:
            rows = [self.value_and_grad(row) for row in flat.reshape(-1, flat.shape[-1])]
            return (np.stack([r[0] for r in rows]).reshape(flat.shape[:-1]),
                    np.stack([r[1] for r in rows]).reshape(flat.shape))
        z = self.unravel(flat, requires_grad=True)
        with self.lock:
            u = self.fn(z)
            grads = torch.autograd.grad(u, [z[n] for n in self.names], allow_unused=True)
        g = [np.zeros(int(np.prod(s))) if gr is None else gr.detach().numpy().reshape(-1)
             for gr, s in zip(grads, self.shapes)]
        return np.asarray(float(u.detach()), dtype=flat.dtype), np.concatenate(g).astype(flat.dtype)

    def jax_potential(self, dim, dtype):
        """``U(x)`` for JAX: values by ``pure_callback``, gradients by a ``custom_vjp`` whose
        forward pass asks torch for both."""
        scalar = jax.ShapeDtypeStruct((), dtype)
        vector = jax.ShapeDtypeStruct((dim,), dtype)

        # "expand_dims": a vmapped call (a step's proposals: proposal_chunk = num_proposals) reaches
        # the host once with the whole batch; each callback costs ~0.5 ms of JAX overhead here.
        @jax.custom_vjp
        def potential(x):
            return jax.pure_callback(self.value, scalar, x, vmap_method="expand_dims")

        def fwd(x):
            return jax.pure_callback(self.value_and_grad, (scalar, vector), x, vmap_method="expand_dims")

        def bwd(grad, cotangent):
            return (cotangent * grad,)

        potential.defvjp(fwd, bwd)
        return potential


def _check_discrete(model, args, kwargs):
    trace = poutine.trace(poutine.block(model, hide_types=["param"])).get_trace(*args, **kwargs)
    discrete = [name for name, site in trace.nodes.items()
                if site["type"] == "sample" and not site["is_observed"]
                and getattr(site["fn"], "has_enumerate_support", False) and not site["infer"].get("enumerate")]
    if discrete:
        raise ValueError(
            f"SL needs continuous latent sites; {discrete} are discrete. Mark them "
            "infer={'enumerate': 'parallel'} (Pyro's potential then sums them out), marginalise them in the "
            "model (e.g. a mixture distribution), or observe them."
        )
