"""What slppl's networks share: building them, the preconditioned residual, training, and the file format.

Used by :class:`~slppl.denoisers.Learned`, :class:`~slppl.denoisers.Amortized` and the adaptive
kernel's ``denoiser="learned"``. The networks are `equinox <https://docs.kidger.site/equinox/>`_
MLPs (plain pytrees of arrays: they pass ``jit``/``vmap``/``pmap`` and save as their leaves), trained
with optax's Adam; both are the optional extra ``slppl[learn]``.
"""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

T_EMBED = 1e-3


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


def _network(key, dim, width, depth, num_freqs, dtype, num_context=0, architecture="mlp"):
    """The residual network, its output layer at zero (the untrained denoiser is the base exactly).

    ``"mlp"``: one MLP ``(d + 2·num_freqs + num_context,) → (d,)``. ``"coordinatewise"``: one small
    MLP shared by the coordinates (:func:`_coordinatewise`), which sees the whole input but answers
    for one coordinate at a time.
    """
    eqx, _ = _require()
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    if architecture == "coordinatewise":
        if num_context:
            raise ValueError("the coordinatewise network takes no context (amortized denoisers use 'mlp')")
        mlp = eqx.nn.MLP(2 + 2 * num_freqs + dim, 1, width, depth, activation=jax.nn.silu, key=key, dtype=dtype)
        return _coordinatewise()(_zero_output(mlp), dim, num_freqs)
    net = eqx.nn.MLP(dim + 2 * num_freqs + num_context, dim, width, depth, activation=jax.nn.silu, key=key,
                     dtype=dtype)
    return _zero_output(net)


ARCHITECTURES = ("mlp", "coordinatewise")


def _zero_output(mlp):
    eqx, _ = _require()
    last = mlp.layers[-1]
    return eqx.tree_at(lambda n: (n.layers[-1].weight, n.layers[-1].bias), mlp,
                       (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))


_COORDINATEWISE = []


def _coordinatewise():
    """The class of the coordinatewise network, made once (equinox is an optional import).

    Coordinate ``i``'s output is ``mlp([h_i, b_i, φ(t), e_i])``: its own whitened observation
    ``h_i``, the base's whitened answer ``b_i`` for it, the time features and its one-hot index.
    On a target that is a product over coordinates the exact denoiser has this form (coordinate
    ``i``'s posterior mean depends on ``y_i`` alone), which a full MLP has to discover from noisy
    regression targets; the shared weights see ``d`` examples per draw.
    """
    if not _COORDINATEWISE:
        eqx, _ = _require()

        class Coordinatewise(eqx.Module):
            mlp: eqx.nn.MLP
            dim: int = eqx.field(static=True)
            num_freqs: int = eqx.field(static=True)

            def __call__(self, inputs):
                d, f = self.dim, self.num_freqs
                h, phi, b = inputs[:d], inputs[d:d + 2 * f], inputs[d + 2 * f:d + 2 * f + d]
                rows = jnp.concatenate([h[:, None], b[:, None], jnp.broadcast_to(phi, (d, 2 * f)),
                                        jnp.eye(d, dtype=h.dtype)], axis=1)
                return jax.vmap(self.mlp)(rows)[:, 0]

        _COORDINATEWISE.append(Coordinatewise)
    return _COORDINATEWISE[0]


def residual(network, num_freqs, y, t, loc, scale, context=None, base_mean=None, t_max=None):
    """``c_out(t) ⊙ net(c_in(t) ⊙ (y − t·loc), φ(t) [, b] [, context])``, the preconditioned correction.

    ``base_mean`` (the base's answer, whitened to ``b``) is an input of the coordinatewise network.
    Beyond ``t_max``, the largest time trained on, the network is not evaluated at ``t``: its answer
    at ``t_max`` is scaled down as ``√(t_max/t)``, the rate at which a closed form's error relative to
    the posterior sd vanishes (an untrained output there was a posterior sd of error, DESIGN.md §4).
    """
    dtype = y.dtype
    t = jnp.asarray(t, dtype)
    t_in, fade = t, 1.0
    if t_max is not None:  # h is scale-free at large t; only the time features would leave the range
        t_in = jnp.minimum(t, t_max)
        fade = jnp.sqrt(t_max / jnp.maximum(t, t_max))
    var = scale**2
    h = (y - t * loc) / jnp.sqrt(1.0 + t + t * t * var)
    parts = [h, _embed(t_in, num_freqs, dtype)]
    if base_mean is not None:
        parts.append((base_mean - loc) / scale)
    parts += [] if context is None else [context]
    return fade * scale / jnp.sqrt(1.0 + t * var) * network(jnp.concatenate(parts))


def _save(path, networks, header, arrays):
    """One ``.npz``: each network's leaves (``{prefix}_{i}`` for ``networks = {prefix: module}``),
    ``arrays``, and ``header`` as JSON bytes."""
    eqx, _ = _require()
    from .._version import __version__

    out = {}
    for prefix, network in networks.items():
        leaves = jax.tree_util.tree_leaves(eqx.filter(network, eqx.is_array))
        out.update({f"{prefix}_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
    header = dict(format=header.pop("format"), format_version=FORMAT_VERSION, slppl_version=__version__,
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
                        num_context, settings.get("architecture", "mlp"))
    return _load_leaves(path, arrays, skeleton, "net", dtype)


def _load_leaves(path, arrays, skeleton, prefix, dtype):
    """``skeleton`` (an equinox module) with its array leaves replaced by the file's ``{prefix}_{i}``."""
    eqx, _ = _require()
    params, static = eqx.partition(skeleton, eqx.is_array)
    slots, treedef = jax.tree_util.tree_flatten(params)
    names = [f"{prefix}_{i}" for i in range(len(slots))]
    _check_shapes(path, arrays, {k: s.shape for k, s in zip(names, slots)})
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[k], dtype) for k in names]), static)


def _train(rng_key, den, x, optimizer, num_iters, batch_size, t_range, contexts=None, times=None, target="dsm"):
    """Adam on the preconditioned DSM loss; returns the trained network and the loss per iteration."""
    eqx, _ = _require()
    params, static = eqx.partition(den.network, eqx.is_array)
    return _adam(rng_key, _dsm_loss(den, static, x, contexts, batch_size, t_range, times, target), params, static,
                 optimizer, num_iters)


TARGETS = ("dsm", "stf")
NUM_REFERENCE = 1024


def _dsm_loss(den, static, x, contexts, batch_size, t_range, times=None, target="dsm"):
    """``loss(params, key)``: ``E |m(y_t, t) − target|² / c_out(t)²`` over a batch of draws ``x`` (each
    with its row of ``contexts``, the denoiser's state, for an amortized one), ``y_t = t·x + √t·ε``.

    ``t`` is drawn from ``times`` (the kernel's grid: train where the kernel evaluates) or, without
    them, log-uniformly on ``t_range`` divided by the mean of ``den.scale²``. ``target``: ``"dsm"``
    regresses on ``x`` itself; ``"stf"`` (stable target field, Xu et al. 2023) on the posterior mean
    of ``x`` given ``y_t`` under the draws themselves: ``x`` and ``NUM_REFERENCE`` other draws weighted
    by ``exp(⟨y, x_i⟩ − t|x_i|²/2)``. Its variance is far lower where the tilt is mild (the loss's
    noise fell ~3× on the benchmark's targets), its bias vanishes with the number of draws.
    """
    eqx, _ = _require()
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if target == "stf" and contexts is not None:
        raise ValueError("the 'stf' target averages over draws of one posterior; amortized training uses 'dsm'")
    n, d = x.shape
    dtype = x.dtype
    contexts = jnp.zeros((n, 0), dtype) if contexts is None else contexts
    mean_var = jnp.mean(den.marginal_variance())
    log_lo, log_hi = jnp.log(t_range[0] / mean_var), jnp.log(t_range[1] / mean_var)
    times = None if times is None else jnp.asarray(times, dtype)
    num_ref = min(n, NUM_REFERENCE)

    def loss_fn(params, key):
        k_idx, k_t, k_eps, k_ref = jax.random.split(key, 4)
        idx = jax.random.randint(k_idx, (batch_size,), 0, n)
        xb, cb = x[idx], contexts[idx]
        if times is None:
            t = jnp.exp(jax.random.uniform(k_t, (batch_size,), dtype, log_lo, log_hi))
        else:
            t = times[jax.random.randint(k_t, (batch_size,), 0, times.shape[0])]
        y = t[:, None] * xb + jnp.sqrt(t)[:, None] * jax.random.normal(k_eps, (batch_size, d), dtype)
        if target == "stf":
            ref = x[jax.random.choice(k_ref, n, (num_ref,), replace=False)]

            def stf(y_, t_, x_):
                pool = jnp.concatenate([x_[None], ref])
                w = jax.nn.softmax(pool @ y_ - 0.5 * t_ * jnp.sum(pool**2, 1))
                return w @ pool

            goal = jax.vmap(stf)(y, t, xb)
        else:
            goal = xb
        trained = _with_network(den, eqx.combine(params, static))

        def one(y_, t_, g_, c_):
            state = trained.context_state(c_)
            m, _, _ = trained.estimate(None, y_, t_, state)
            scale = trained.residual_scale(state)
            c_out = scale / jnp.sqrt(1.0 + t_ * scale**2)
            return jnp.mean(((m - g_) / c_out) ** 2)

        return jnp.mean(jax.vmap(one)(y, t, goal, cb))

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


def _with_network(den, network):
    new = object.__new__(type(den))
    new.__dict__.update(den.__dict__)
    new.network = network
    return new
