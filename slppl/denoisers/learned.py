"""A learned denoiser: a time-conditioned network, trained from draws, as a residual on a closed form.

``m(y, t) = m_base(y, t) + c_out(t) ⊙ net(c_in(t) ⊙ (y − t·loc), φ(t))``

- ``m_base`` is the exact denoiser of a Gaussian or Gaussian mixture fitted to the same draws
  (:mod:`slppl.denoisers.fit`): the network's last layer starts at zero, so an untrained
  ``Learned`` *is* the closed form, and training only has to learn what the closed form misses
  (DESIGN.md §4: a mixture captures modes directly; plain DSM cannot see mode weights).
- Preconditioning in SL coordinates, per coordinate with the draws' mean ``loc`` and sd ``σ``:
  the input ``y_t = t·x + B_t`` has variance ``t²σ² + t``, scaled by ``c_in = (1 + t + t²σ²)^(−1/2)``
  to at most about 1 at every t and finite at t = 0; the output is scaled by the posterior sd of
  a Gaussian of that scale at t, ``c_out = σ/√(1 + tσ²)``; time enters as Fourier features of
  ``log(t + T_EMBED)``, finite at t = 0 where every path starts.
- ``Cov(x | y_t)``, which the second-order step and the final Gaussian draw need, is the
  symmetrised Jacobian of the corrected mean with its spectrum floored (``covariance="jacobian"``,
  the default of :meth:`Learned.fit`: Tweedie's identity makes the exact denoiser's Jacobian the
  posterior covariance, and the base's Jacobian is its own closed form), or the base's closed form
  (``"base"``). On the independent double wells the first raised the acceptance from 0.37 to 0.62
  (benchmarks/README.md). The exact correction makes the pair (mean, covariance) a valid proposal
  whatever the mismatch.
- The network is one MLP on the whole vector (``architecture="mlp"``) or one small MLP shared by
  the coordinates (``"coordinatewise"``, :func:`~slppl.denoisers.networks._coordinatewise`), the
  one that beat the closed forms on a product target.

The networks are `equinox <https://docs.kidger.site/equinox/>`_ modules: equinox modules are plain
pytrees of arrays, so the denoiser passes through ``jit``, ``vmap`` and NumPyro's ``pmap`` and
is saved as its leaves without any code; flax.nnx modules are stateful objects that need
``nnx.split``/``merge`` at every such boundary. Training uses optax's Adam. Both are the optional
extra ``slppl[learn]``; ``import slppl`` works without them.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import model_arguments
from .base import Denoiser
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .mixture import MixtureDenoiser, MixtureParams
from .networks import (
    _adam, _check_shapes, _network, _network_from, _read, _require, _save, _train, _with_network, residual,
)

__all__ = ["Learned", "log_weight_variance"]

FORMAT = "slppl.Learned"
COV_FLOOR = 1e-3  # of the smallest posterior variance of a Gaussian of the draws' scales at t

class Learned(Denoiser):
    """A network denoiser trained from draws (see the module docstring for its form).

    Build it with :meth:`fit` (or :meth:`load`); the constructor takes the parts.

    Args:
        base: the closed-form :class:`~slppl.denoisers.mixture.MixtureDenoiser` it corrects.
        network: an equinox module ``(d + 2·num_freqs,) → (d,)``.
        loc, scale: the draws' per-coordinate mean and sd (the preconditioning).
        settings: architecture and training settings, saved with the weights.
        layout: optional ``[(site, shape), ...]`` of the model the draws came from, checked on load.
    """

    validation = None

    def __init__(self, base, network, loc, scale, settings, layout=None):
        self.base = base
        self.network = network
        self.loc = jnp.asarray(loc)
        self.scale = jnp.asarray(scale)
        self.settings = dict(settings)
        self.layout = None if layout is None else [(str(n), tuple(int(s) for s in shape)) for n, shape in layout]
        self.dim = int(self.loc.shape[0])

    def marginal_variance(self):
        return self.scale**2

    def context_state(self, context):
        """The denoiser state for a row of training contexts (none: a ``Learned`` has no context)."""
        return ()

    def residual_scale(self, state):
        return self.scale

    def _residual(self, y, t, base_mean=None):
        coordinatewise = self.settings.get("architecture", "mlp") == "coordinatewise"
        return residual(self.network, self.settings["num_freqs"], y, t, self.loc, self.scale,
                        base_mean=base_mean if coordinatewise else None, t_max=self.settings.get("t_max"))

    def estimate(self, rng_key, y, t, state):
        m, _, _ = self.base.estimate(rng_key, y, t, state)
        return m + self._residual(y, t, m), state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        if self.settings.get("covariance", "base") != "jacobian":
            m, cov, _, _ = self.base.estimate_with_cov(rng_key, y, t, state)
            return m + self._residual(y, t, m), cov, state, ()

        # Tweedie: the exact denoiser's Jacobian in y is Cov(x | y_t) (the base's Jacobian is its
        # own closed-form covariance), so the corrected mean carries its covariance with it. A
        # network's Jacobian need not be symmetric or PSD: symmetrised, its spectrum floored.
        def mean(y_):
            m_, _, _ = self.base.estimate(rng_key, y_, t, state)
            out = m_ + self._residual(y_, t, m_)
            return out, out

        jac, m = jax.jacfwd(mean, has_aux=True)(y)
        w, v = jnp.linalg.eigh(0.5 * (jac + jac.T))
        floor = COV_FLOOR * jnp.min(self.scale**2 / (1.0 + t * self.scale**2))
        return m, (v * jnp.maximum(w, floor)) @ v.T, state, ()

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, rng_key, draws, model=None, *model_args, potential_fn=None,
            base="mixture", width=128, depth=3, num_freqs=8, num_iters=3000, batch_size=256,
            learning_rate=1e-3, t_range=(1e-2, 1e3), num_logvar_iters=0, logvar_batch_size=64,
            logvar_learning_rate=3e-4, times=None, architecture="mlp", covariance="jacobian", target="stf",
            **model_kwargs):
        """Train a ``Learned`` denoiser on draws by denoising score matching.

        The base (``"mixture"``: :class:`~slppl.denoisers.GaussianMixture` by EM and BIC, its
        weights re-estimated against the target when a model or ``potential_fn`` is given;
        ``"gaussian"``: mean and shrunk covariance) is fitted first; the residual network is then
        trained with Adam (cosine-decayed learning rate) to minimise ``E |m(y_t, t) − target|² / c_out(t)²``
        over draws ``x``, ``y_t = t·x + √t·ε``, and ``t`` from ``times`` when given (the grid the
        kernel will run: train where it evaluates) or else log-uniform on ``t_range`` divided by the
        draws' mean variance. Beyond the largest time trained on, the network's answer is faded out
        rather than extrapolated (:func:`~slppl.denoisers.networks.residual`).

        Args:
            rng_key: PRNG key.
            draws: flat ``(n, d)`` array, or NumPyro's sample dict with ``model`` (see
                :func:`slppl.flatten_draws`).
            model, *model_args, **model_kwargs, potential_fn: the target (the model and its
                arguments, as for ``MCMC.run``, or the potential on the flat vector), for the
                base's weights and the saved layout (optional).
            base: ``"mixture"`` or ``"gaussian"``.
            width, depth, num_freqs: the MLP and its time features.
            num_iters, batch_size, learning_rate: Adam's settings.
            t_range: the range of ``t·σ̄²`` trained on when no ``times`` are given.
            architecture: ``"mlp"`` (one MLP on the whole vector) or ``"coordinatewise"`` (one small
                MLP shared by the coordinates, each seeing its own observation, the base's answer for
                it, time and its index: right for targets that are near products of their
                coordinates, such as independent multimodal coordinates).
            covariance: ``"jacobian"``: ``Cov(x | y_t)`` is the symmetrised Jacobian of the corrected
                mean (Tweedie's identity), so the second-order step and the final Gaussian draw follow
                the network; ``"base"``: the base's closed-form covariance.
            target: ``"stf"``: regress on the draws' own posterior mean of ``x`` given ``y_t`` (lower
                variance); ``"dsm"``: on ``x`` (see :func:`~slppl.denoisers.networks._dsm_loss`).
            num_logvar_iters, logvar_batch_size, logvar_learning_rate, times: then minimise the
                variance of the exact log weights ``log μ(x) + log p(path | x) − log q(path, x)``
                of paths drawn from their exact conditional given the draws (needs the target's
                density; ``times`` is the grid the kernel will use, default ``UniformOU().times(25)``
                with the second-order step, for this and for the check below). The weights are what
                the exact kernel accepts by.

        With the target's density, the trained residual is kept only if it lowers
        :func:`log_weight_variance` (256 target paths) below the base's alone; ``den.validation``
        holds both and ``settings["residual_kept"]`` the outcome.

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> draws = jax.random.normal(jax.random.PRNGKey(0), (2000, 2)) * jnp.array([1.0, 3.0])
            >>> den = Learned.fit(jax.random.PRNGKey(1), draws, num_iters=200)
            >>> den.dim, den.estimate(jax.random.PRNGKey(2), jnp.zeros(2), 0.0, ())[0].shape
            (2, (2,))
        """
        eqx, optax = _require()
        from ..layout import flat_potential, flatten_draws, site_layout
        from .networks import ARCHITECTURES, TARGETS

        if base not in ("mixture", "gaussian"):
            raise ValueError(f"base must be 'mixture' or 'gaussian', got {base!r}")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        if covariance not in ("jacobian", "base"):
            raise ValueError(f"covariance must be 'jacobian' or 'base', got {covariance!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        model_args, model_kwargs = model_arguments(model_args, model_kwargs, "Learned.fit")
        x = jnp.asarray(flatten_draws(draws, model, *model_args, **model_kwargs))
        if x.ndim != 2 or x.shape[0] < 2 or not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError(f"draws must be a finite (n, d) array with n >= 2, got shape {x.shape}")
        n, d = x.shape
        dtype = x.dtype
        k_base, _, k_net, k_train = jax.random.split(rng_key, 4)  # four, so the network keys stay as they were
        if model is not None and potential_fn is None:
            potential_fn = flat_potential(model, *model_args, **model_kwargs)[0]
        if base == "gaussian":
            mixture = Gaussian.fit(x)
        else:
            mixture = GaussianMixture.fit(k_base, x, potential_fn=potential_fn)
        loc, scale = x.mean(0), x.std(0) + 1e-12
        train_times = None if times is None else np.asarray(times, float)
        t_max = (float(t_range[1]) / float(jnp.mean(scale**2))) if train_times is None else float(train_times.max())
        settings = dict(base=base, width=int(width), depth=int(depth), num_freqs=int(num_freqs),
                        num_iters=int(num_iters), batch_size=int(batch_size),
                        learning_rate=float(learning_rate), t_range=[float(v) for v in t_range],
                        architecture=architecture, covariance=covariance, target=target, t_max=t_max)
        net = _network(k_net, d, int(width), int(depth), int(num_freqs), dtype, architecture=architecture)
        layout = None if model is None else [(s.name, s.shape) for s in site_layout(model, *model_args, **model_kwargs)]
        den = cls(mixture, net, loc, scale, settings, layout)
        schedule = optax.cosine_decay_schedule(learning_rate, max(int(num_iters), 1))
        den.network, den.losses = _train(k_train, den, x, optax.adam(schedule), int(num_iters), int(batch_size),
                                         t_range, times=train_times, target=target)
        from ..integrators import SecondOrder
        from ..time_grids import UniformOU

        times = jnp.asarray(UniformOU().times(25) if times is None else times, dtype)
        if num_logvar_iters:
            if potential_fn is None:
                raise ValueError("num_logvar_iters > 0 needs the target's density: pass model or potential_fn")
            den.settings.update(num_logvar_iters=int(num_logvar_iters), logvar_batch_size=int(logvar_batch_size),
                                logvar_learning_rate=float(logvar_learning_rate))
            den.network, den.logvar_losses = _train_logvar(
                jax.random.fold_in(k_train, 1), den, x, potential_fn, times, SecondOrder(),
                optax.adam(logvar_learning_rate), int(num_logvar_iters), int(logvar_batch_size))
        if potential_fn is not None and num_iters + num_logvar_iters > 0:
            # Keep the residual only if the exact weights say it helps: on some targets the DSM
            # residual made the proposal worse than its own base (benchmarks/README.md).
            base_only = _with_network(den, net)
            key = jax.random.fold_in(k_train, 2)
            def check(d_):
                return float(jax.jit(lambda: log_weight_variance(key, d_, x, potential_fn, times)[0])())

            den.validation = {"base": check(base_only), "trained": check(den)}
            den.settings["residual_kept"] = bool(den.validation["trained"] <= den.validation["base"])
            if not den.settings["residual_kept"]:
                den.network = net
        return den

    @classmethod
    def fit_amortized(cls, rng_key, model, *model_args, **kwargs):
        """Train one denoiser for every data set of ``model``: see :meth:`slppl.denoisers.Amortized.fit`.

        Examples:
            >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
            >>> def model(y):
            ...     mu = numpyro.sample("mu", dist.Normal(0, 1))
            ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
            >>> den = Learned.fit_amortized(jax.random.PRNGKey(0), model, jnp.zeros(5), num_simulations=500,
            ...                             num_base_iters=0, num_iters=0)  # the regression base alone
            >>> type(den).__name__, den.obs_layout
            ('Amortized', [('y', (5,))])
        """
        from .amortized import Amortized

        return Amortized.fit(rng_key, model, *model_args, **kwargs)

    # ------------------------------------------------------------------ saving
    def save(self, path):
        """Write the weights and a JSON header to one ``.npz`` file (no pickled objects).

        Examples:
            >>> import jax, os, tempfile
            >>> draws = jax.random.normal(jax.random.PRNGKey(0), (500, 2))
            >>> den = Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=10)
            >>> path = os.path.join(tempfile.mkdtemp(), "den.npz")
            >>> den.save(path); Learned.load(path).dim
            2
        """
        p = self.base.params
        _save(path, {"net": self.network},
              dict(format=FORMAT, dim=self.dim, dtype=str(self.loc.dtype), settings=self.settings, layout=self.layout),
              dict(base_log_weights=p.log_weights, base_means=p.means, base_eigvals=p.eigvals,
                   base_eigvecs=p.eigvecs, loc=self.loc, scale=self.scale))

    @classmethod
    def load(cls, path, model=None, *model_args, **model_kwargs):
        """Read a file written by :meth:`save`. Nothing in it is executed (``allow_pickle=False``).

        With ``model`` (and its arguments) the saved site layout is checked against the model's.
        A file that is not such a file, is truncated, or has arrays of the wrong shape raises
        ``ValueError`` naming what is wrong.
        """
        header, arrays = _read(path, FORMAT)
        d, settings = int(header["dim"]), header["settings"]
        dtype = jnp.dtype(header["dtype"])
        network = _network_from(path, arrays, settings, d, dtype)
        _check_shapes(path, arrays, {"loc": (d,), "scale": (d,), "base_means": None})
        k_base = arrays["base_means"].shape[0]
        base_shapes = {"base_log_weights": (k_base,), "base_means": (k_base, d), "base_eigvals": (k_base, d),
                       "base_eigvecs": (k_base, d, d)}
        _check_shapes(path, arrays, base_shapes)
        base = MixtureDenoiser.from_params(MixtureParams(*(jnp.asarray(arrays[k], dtype) for k in base_shapes)))
        den = cls(base, network, jnp.asarray(arrays["loc"], dtype), jnp.asarray(arrays["scale"], dtype), settings,
                  header.get("layout"))
        if model is not None:
            den.check_layout(model, *model_args, **model_kwargs)
        return den

    def check_layout(self, model, *model_args, **model_kwargs):
        """Raise ``ValueError`` when the model's latent layout is not the one this was trained on."""
        from ..layout import site_layout

        have = [(s.name, tuple(s.shape)) for s in site_layout(model, *model_args, **model_kwargs)]
        if self.layout is not None and have != [(n, tuple(s)) for n, s in self.layout]:
            raise ValueError(f"the denoiser was trained on latent sites {self.layout}, the model has {have}; "
                             "refit it for this model (Learned.fit) or pass the model it was trained on")
        if sum(int(np.prod(s)) for _, s in have) != self.dim and self.layout is None:
            raise ValueError(f"the denoiser acts on vectors of length {self.dim}, the model's flat latent vector "
                             f"has length {sum(int(np.prod(s)) for _, s in have)}")


def log_weight_variance(rng_key, den, draws, potential_fn, times, integrator=None, num_paths=256):
    """Variance of the exact log weights ``−U(x) + log_aux(path, x)`` of ``den``'s proposal over
    target paths: ``x`` among ``draws`` (of the target), the path from its law given ``x``.

    Zero for the exact denoiser; it is what the exact kernel's acceptance depends on, so it
    compares denoisers on the target's own paths (DSM's loss cannot, DESIGN.md §4). Non-finite
    weights (paths the proposal cannot produce) count as ``+inf``.
    """
    from ..integrators import SecondOrder
    from ..trajectory import conditional_path, path_log_aux

    integrator = SecondOrder() if integrator is None else integrator
    k_idx, k_path = jax.random.split(rng_key)
    xb = draws[jax.random.randint(k_idx, (num_paths,), 0, draws.shape[0])]
    paths = jax.vmap(lambda k, xi: conditional_path(k, xi, times))(jax.random.split(k_path, num_paths), xb)
    log_aux = jax.vmap(lambda p, xi: path_log_aux(k_path, den, times, integrator, p, xi)[0])(paths, xb)
    log_w = log_aux - jax.vmap(potential_fn)(xb)
    ok = jnp.isfinite(log_w)
    # A non-finite weight must not poison a gradient through the finite ones.
    log_w = jnp.where(ok, log_w, 0.0)
    mean = jnp.sum(log_w) / jnp.maximum(jnp.sum(ok), 1)
    var = jnp.sum(jnp.where(ok, (log_w - mean) ** 2, 0.0)) / jnp.maximum(jnp.sum(ok) - 1, 1)
    return var, jnp.all(ok)


def _train_logvar(rng_key, den, x, potential_fn, times, integrator, optimizer, num_iters, batch_size):
    """Adam on the variance of the exact path log weights, paths from their law given the draws."""
    eqx, _ = _require()
    params, static = eqx.partition(den.network, eqx.is_array)

    def loss_fn(params, key):
        trained = _with_network(den, eqx.combine(params, static))
        return log_weight_variance(key, trained, x, potential_fn, times, integrator, batch_size)[0]

    return _adam(rng_key, loss_fn, params, static, optimizer, num_iters)

