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
- ``Cov(x | y_t)`` is the base's closed-form tilted covariance, symmetric positive semi-definite
  by construction: the network's Jacobian is neither, and the second-order step and the final
  Gaussian draw need a covariance. The exact correction makes the pair (mean, covariance) a valid
  proposal whatever the mismatch.

The network is an `equinox <https://docs.kidger.site/equinox/>`_ MLP: equinox modules are plain
pytrees of arrays, so the denoiser passes through ``jit``, ``vmap`` and NumPyro's ``pmap`` and
is saved as its leaves without any code; flax.nnx modules are stateful objects that need
``nnx.split``/``merge`` at every such boundary. Training uses optax's Adam. Both are the optional
extra ``slppl[learn]``; ``import slppl`` works without them.
"""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from .base import Denoiser
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .mixture import MixtureDenoiser, MixtureParams

__all__ = ["Learned", "log_weight_variance"]

T_EMBED = 1e-3
FORMAT = "slppl.Learned"
FORMAT_VERSION = 1


def _require():
    try:
        import equinox
        import optax
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "Learned denoisers need equinox and optax: pip install 'slppl[learn]'"
        ) from err
    return equinox, optax


def _embed(t, num_freqs, dtype):
    s = jnp.log(t + T_EMBED)
    freqs = 2.0 ** jnp.arange(num_freqs, dtype=dtype) / 8.0
    return jnp.concatenate([jnp.sin(freqs * s), jnp.cos(freqs * s)])


def _network(key, dim, width, depth, num_freqs, dtype, num_context=0):
    eqx, _ = _require()
    net = eqx.nn.MLP(dim + 2 * num_freqs + num_context, dim, width, depth, activation=jax.nn.silu, key=key,
                     dtype=dtype)
    # Zero output layer: the untrained denoiser is the base exactly.
    last = net.layers[-1]
    return eqx.tree_at(lambda n: (n.layers[-1].weight, n.layers[-1].bias), net,
                       (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))


def residual(network, num_freqs, y, t, loc, scale, context=None):
    """``c_out(t) ⊙ net(c_in(t) ⊙ (y − t·loc), φ(t) [, context])``, the preconditioned correction."""
    dtype = y.dtype
    t = jnp.asarray(t, dtype)
    var = scale**2
    h = (y - t * loc) / jnp.sqrt(1.0 + t + t * t * var)
    parts = [h, _embed(t, num_freqs, dtype)] + ([] if context is None else [context])
    return scale / jnp.sqrt(1.0 + t * var) * network(jnp.concatenate(parts))


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

    def _residual(self, y, t):
        return residual(self.network, self.settings["num_freqs"], y, t, self.loc, self.scale)

    def estimate(self, rng_key, y, t, state):
        m, _, _ = self.base.estimate(rng_key, y, t, state)
        return m + self._residual(y, t), state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        m, cov, _, _ = self.base.estimate_with_cov(rng_key, y, t, state)
        return m + self._residual(y, t), cov, state, ()

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, rng_key, draws, model=None, model_args=(), model_kwargs=None, *, potential_fn=None,
            base="mixture", width=128, depth=3, num_freqs=8, num_iters=3000, batch_size=256,
            learning_rate=1e-3, t_range=(1e-2, 1e3), num_logvar_iters=0, logvar_batch_size=64,
            logvar_learning_rate=3e-4, times=None):
        """Train a ``Learned`` denoiser on draws by denoising score matching.

        The base (``"mixture"``: :class:`~slppl.denoisers.GaussianMixture` by EM and BIC, its
        weights re-estimated against the target when a model or ``potential_fn`` is given;
        ``"gaussian"``: mean and shrunk covariance) is fitted first; the residual network is then
        trained with Adam to minimise ``E |m(y_t, t) − x|² / c_out(t)²`` over draws ``x``,
        ``y_t = t·x + √t·ε`` and ``t`` log-uniform on ``t_range`` divided by the draws' mean
        variance (so the range follows the target's scale).

        Args:
            rng_key: PRNG key.
            draws: flat ``(n, d)`` array, or NumPyro's sample dict with ``model`` (see
                :func:`slppl.flatten_draws`).
            model, model_args, model_kwargs, potential_fn: the target, for the base's weights and
                the saved layout (optional).
            base: ``"mixture"`` or ``"gaussian"``.
            width, depth, num_freqs: the MLP and its time features.
            num_iters, batch_size, learning_rate: Adam's settings.
            t_range: the range of ``t·σ̄²`` trained on.
            num_logvar_iters, logvar_batch_size, logvar_learning_rate, times: then minimise the
                variance of the exact log weights ``log μ(x) + log p(path | x) − log q(path, x)``
                of paths drawn from their exact conditional given the draws (needs the target's
                density; ``times`` is the grid the kernel will use, default ``UniformOU().times(25)``
                with the second-order step). The weights are what the exact kernel accepts by.

        With the target's density, the trained residual is kept only if it lowers
        :func:`log_weight_variance` (256 target paths) below the base's alone; ``den.validation``
        holds both and ``settings["residual_kept"]`` the outcome.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> draws = jax.random.normal(jax.random.PRNGKey(0), (2000, 2)) * jnp.array([1.0, 3.0])
            >>> den = Learned.fit(jax.random.PRNGKey(1), draws, num_iters=200)
            >>> den.dim, den.estimate(jax.random.PRNGKey(2), jnp.zeros(2), 0.0, ())[0].shape
            (2, (2,))
        """
        eqx, optax = _require()
        from ..layout import flat_potential, flatten_draws, site_layout

        if base not in ("mixture", "gaussian"):
            raise ValueError(f"base must be 'mixture' or 'gaussian', got {base!r}")
        model_kwargs = {} if model_kwargs is None else model_kwargs
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
        settings = dict(base=base, width=int(width), depth=int(depth), num_freqs=int(num_freqs),
                        num_iters=int(num_iters), batch_size=int(batch_size),
                        learning_rate=float(learning_rate), t_range=[float(v) for v in t_range])
        net = _network(k_net, d, int(width), int(depth), int(num_freqs), dtype)
        layout = None if model is None else [(s.name, s.shape) for s in site_layout(model, *model_args, **model_kwargs)]
        den = cls(mixture, net, loc, scale, settings, layout)
        den.network, den.losses = _train(k_train, den, x, optax.adam(learning_rate), int(num_iters),
                                         int(batch_size), t_range)
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

        Example:
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

        Example:
            >>> import jax, os, tempfile
            >>> draws = jax.random.normal(jax.random.PRNGKey(0), (500, 2))
            >>> den = Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=10)
            >>> path = os.path.join(tempfile.mkdtemp(), "den.npz")
            >>> den.save(path); Learned.load(path).dim
            2
        """
        p = self.base.params
        _save(path, {"net": self.network}, dict(dim=self.dim, dtype=str(self.loc.dtype), settings=self.settings,
                                       layout=self.layout),
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


def _save(path, networks, header, arrays):
    """One ``.npz``: each network's leaves (``{prefix}_{i}`` for ``networks = {prefix: module}``),
    ``arrays``, and ``header`` as JSON bytes."""
    eqx, _ = _require()
    from .._version import __version__

    out = {}
    for prefix, network in networks.items():
        leaves = jax.tree_util.tree_leaves(eqx.filter(network, eqx.is_array))
        out.update({f"{prefix}_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
    header = dict(format=header.pop("format", FORMAT), format_version=FORMAT_VERSION, slppl_version=__version__,
                  **header)
    out.update({k: np.asarray(v) for k, v in arrays.items()})
    out["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **out)


def _read(path, fmt):
    """``(header, arrays)`` of a file written by :func:`_save` in format ``fmt``; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(bytes(arrays.pop("header")).decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        kind = fmt.split(".")[-1]
        raise ValueError(f"{path} is not a readable slppl {kind} file ({type(err).__name__}: {err})") from err
    if header.get("format") != fmt or header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a {fmt} file of format version {FORMAT_VERSION} "
                         f"(header says {header.get('format')!r}, version {header.get('format_version')!r})")
    return header, arrays


def _check_shapes(path, arrays, expected):
    """Raise ``ValueError`` for a missing array or one whose shape is not ``expected[name]`` (``None``: any)."""
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}: the file is incomplete or from another version")
    for k, shape in expected.items():
        if shape is not None and tuple(arrays[k].shape) != tuple(shape):
            raise ValueError(f"{path}: array {k} has shape {arrays[k].shape}, the header's architecture needs {shape}")


def _network_from(path, arrays, settings, dim, dtype, num_context=0):
    """The network the header's architecture describes, with the file's weights."""
    skeleton = _network(jax.random.PRNGKey(0), dim, settings["width"], settings["depth"], settings["num_freqs"], dtype,
                        num_context)
    return _load_leaves(path, arrays, skeleton, "net", dtype)


def _load_leaves(path, arrays, skeleton, prefix, dtype):
    """``skeleton`` (an equinox module) with its array leaves replaced by the file's ``{prefix}_{i}``."""
    eqx, _ = _require()
    params, static = eqx.partition(skeleton, eqx.is_array)
    slots, treedef = jax.tree_util.tree_flatten(params)
    names = [f"{prefix}_{i}" for i in range(len(slots))]
    _check_shapes(path, arrays, {k: s.shape for k, s in zip(names, slots)})
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[k], dtype) for k in names]), static)


def _train(rng_key, den, x, optimizer, num_iters, batch_size, t_range, contexts=None):
    """Adam on the preconditioned DSM loss; returns the trained network and the loss per iteration."""
    eqx, _ = _require()
    params, static = eqx.partition(den.network, eqx.is_array)
    return _adam(rng_key, _dsm_loss(den, static, x, contexts, batch_size, t_range), params, static, optimizer,
                 num_iters)


def _dsm_loss(den, static, x, contexts, batch_size, t_range):
    """``loss(params, key)``: ``E |m(y_t, t) − x|² / c_out(t)²`` over a batch of draws ``x`` (each with
    its row of ``contexts``, the denoiser's state, for an amortized one), ``y_t = t·x + √t·ε`` and
    ``t`` log-uniform on ``t_range`` divided by the mean of ``den.scale²``."""
    eqx, _ = _require()
    n, d = x.shape
    dtype = x.dtype
    contexts = jnp.zeros((n, 0), dtype) if contexts is None else contexts
    mean_var = jnp.mean(den.marginal_variance())
    log_lo, log_hi = jnp.log(t_range[0] / mean_var), jnp.log(t_range[1] / mean_var)

    def loss_fn(params, key):
        k_idx, k_t, k_eps = jax.random.split(key, 3)
        idx = jax.random.randint(k_idx, (batch_size,), 0, n)
        xb, cb = x[idx], contexts[idx]
        t = jnp.exp(jax.random.uniform(k_t, (batch_size,), dtype, log_lo, log_hi))
        y = t[:, None] * xb + jnp.sqrt(t)[:, None] * jax.random.normal(k_eps, (batch_size, d), dtype)
        trained = _with_network(den, eqx.combine(params, static))

        def one(y_, t_, x_, c_):
            state = trained.context_state(c_)
            m, _, _ = trained.estimate(None, y_, t_, state)
            scale = trained.residual_scale(state)
            c_out = scale / jnp.sqrt(1.0 + t_ * scale**2)
            return jnp.mean(((m - x_) / c_out) ** 2)

        return jnp.mean(jax.vmap(one)(y, t, xb, cb))

    return loss_fn


def _adam(rng_key, loss_fn, params, static, optimizer, num_iters):
    """``num_iters`` optimizer steps on ``loss_fn(params, key)`` in one compiled scan; returns the
    trained network and the loss per step. Traceable: the adaptive kernel trains inside its warmup."""
    eqx, optax = _require()
    if not num_iters:  # nothing to compile
        return eqx.combine(params, static), jnp.zeros((0,))

    def step(carry, key):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.jit(lambda p, s, k: jax.lax.scan(step, (p, s), jax.random.split(k, num_iters)))(
        params, optimizer.init(params), rng_key)
    return eqx.combine(params, static), losses


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


def _with_network(den, network):
    new = object.__new__(type(den))
    new.__dict__.update(den.__dict__)
    new.network = network
    return new
