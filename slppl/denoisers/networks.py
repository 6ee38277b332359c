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


def _with_network(den, network):
    new = object.__new__(type(den))
    new.__dict__.update(den.__dict__)
    new.network = network
    return new
