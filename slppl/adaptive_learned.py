"""The ``"learned"`` family of the adaptive kernel: a residual network over the fitted mixture.

Trained by denoising score matching at the refit, in whitened coordinates, and kept only where it
lowers the variance of the exact log weights on paths of the buffer's draws
(:class:`slppl.denoisers.Learned`); until then, and where it is not kept, its output is zero and
the proposal is the mixture alone.
"""

import jax
import jax.numpy as jnp

from .denoisers.mixture import MixtureDenoiser

__all__ = ["LEARNED_ITERS", "LEARNED_SETTINGS", "zero_network", "proposal_denoiser", "train_residual"]


# "learned": the mixture, plus a residual network (slppl.denoisers.Learned, whitened coordinates)
# trained by DSM on the buffer at the refit and kept only if it lowers the variance of the exact
# log weights on paths of the buffer's draws. Its paths need an integrator (no exact path draws).
LEARNED_ITERS = 1000
LEARNED_SETTINGS = dict(width=128, depth=3, num_freqs=8)


def zero_network(d, dtype):
    """``(arrays, static)`` of the residual network at its start (zero output: the base alone)."""
    from .denoisers.networks import _network, _require

    eqx, _ = _require()
    net = _network(jax.random.PRNGKey(0), d, dtype=dtype, **LEARNED_SETTINGS)
    return eqx.partition(net, eqx.is_array)


def proposal_denoiser(state):
    """The state's proposal denoiser in whitened coordinates: the mixture, plus the residual
    network when there is one."""
    base = MixtureDenoiser.from_params(state.mixture)
    if not jax.tree_util.tree_leaves(state.network):
        return base
    from .denoisers.learned import Learned
    from .denoisers.networks import _require

    eqx, _ = _require()
    d = state.shift.shape[0]
    dtype = state.shift.dtype
    network = eqx.combine(state.network, zero_network(d, dtype)[1])
    return Learned(base, network, jnp.zeros(d, dtype), jnp.ones(d, dtype), LEARNED_SETTINGS)


def train_residual(rng_key, base, u, potential_u, integrator, times):
    """The residual's arrays trained by DSM on the whitened draws ``u`` over the mixture ``base``,
    or zero where that does not lower the variance of the exact log weights on their paths."""
    from .denoisers.learned import Learned, log_weight_variance
    from .denoisers.networks import _adam, _dsm_loss, _require

    eqx, optax = _require()
    d = u.shape[1]
    dtype = u.dtype
    zero, static = zero_network(d, dtype)
    den = Learned(MixtureDenoiser.from_params(base), None, jnp.zeros(d, dtype), jnp.ones(d, dtype), LEARNED_SETTINGS)
    k_train, k_check = jax.random.split(rng_key)
    trained, _ = _adam(k_train, _dsm_loss(den, static, u, None, 256, (1e-2, 1e3)), zero, static, optax.adam(1e-3),
                       LEARNED_ITERS)
    trained = eqx.filter(trained, eqx.is_array)
    times = jnp.asarray(times, dtype)

    def variance(params):
        den.network = eqx.combine(params, static)
        var, _ = log_weight_variance(k_check, den, u, potential_u, times, integrator)
        return var

    keep = variance(trained) < variance(zero)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), trained, zero)
