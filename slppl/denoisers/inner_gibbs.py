"""A denoiser of a law on finite-valued coordinates estimated by a heat-bath chain run along the path."""

import jax
import jax.numpy as jnp

from .._random import categorical
from .finite import FiniteValued, finite_values

__all__ = ["InnerGibbs"]


class InnerGibbs(FiniteValued):
    """``E[x | y_t = y]`` for ``μ ∝ exp(−U)`` on ``x ∈ Π_i V_i`` (finite sets), estimated by Gibbs sweeps.

    An inner configuration follows the path: at every time of the grid it makes ``num_sweeps``
    heat-bath sweeps (sites in order, each redrawn from its exact conditional) on the tilted measure
    ``μ_{t,y}(x) ∝ exp(−U(x) + ⟨y, x⟩ − t|x|²/2)``, and the estimate is the average of the
    conditional probabilities it drew from (Rao–Blackwellised). As ``t`` grows the tilted measure
    sharpens and the inner chain follows it, annealed. The conditionals are computed from ``U`` at
    actual configurations, so nothing is asked of ``U`` between the values: the collapsed
    spike-and-slab likelihood, where mean field's gradient fields fail (acceptance 0.03), gave
    acceptance about 0.8 (``examples/spike_and_slab.py``).

    The estimate is random. The kernel stays exact: the inner chain's draws are auxiliary variables
    of the proposal, the same on the target's side, and cancel in the weight. The inner chain
    restarts at ``t = 0`` from a uniform configuration and ``num_burnin`` sweeps, so no proposal
    depends on the chain's current point (independent Metropolis–Hastings needs that).

    Cost per path: ``(num_burnin + num_steps·num_sweeps)·d`` site visits, in sequence, each
    evaluating ``U`` once on two-valued coordinates (at the other value), else at the site's ``K``
    values in one batch.

    Args:
        potential_fn: ``U`` on flat vectors of length ``d`` (evaluated at configurations only).
        values: each coordinate's values, a ``(d, K)`` table padded with NaN where a coordinate has
            fewer (``coordinate_values`` makes one), or one row of values with ``dim``.
        dim: ``d`` (needed when ``values`` is one row).
        num_sweeps: sweeps per grid time.
        num_burnin: sweeps at ``t = 0`` before the first estimate.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> J = 0.3 * (jnp.ones((3, 3)) - jnp.eye(3))
        >>> den = InnerGibbs(lambda x: -0.5 * x @ J @ x, values=(-1.0, 1.0), dim=3)
        >>> state = den.init(jnp.zeros(3))
        >>> m, state, _ = den.estimate(jax.random.PRNGKey(0), jnp.array([20.0, 20.0, 20.0]), 10.0, state)
        >>> m.round(2).tolist()   # a strong field: every spin up
        [1.0, 1.0, 1.0]
    """

    deterministic = False

    def __init__(self, potential_fn, values=(0.0, 1.0), dim=None, num_sweeps=1, num_burnin=10, num_chains=1):
        if int(num_sweeps) < 1 or int(num_burnin) < 0 or int(num_chains) < 1:
            raise ValueError("num_sweeps and num_chains must be >= 1 and num_burnin >= 0")
        self.values = finite_values(values, dim)
        self.dim = int(self.values.shape[0])
        self.potential_fn = potential_fn
        self.num_sweeps = int(num_sweeps)
        self.num_burnin = int(num_burnin)
        self.num_chains = int(num_chains)

    def init(self, position):
        """The inner configurations (replaced at the start of every path)."""
        return jnp.broadcast_to(jnp.asarray(self.values[:, 0], position.dtype), (self.num_chains, self.dim))

    def _table(self, dtype):
        """``(values, log mask)``: the values with padding at 0, and 0 / −inf for real / padding."""
        values = jnp.asarray(self.values, dtype)
        return jnp.nan_to_num(values), jnp.where(jnp.isnan(values), -jnp.inf, 0.0)

    def _sweeps(self, rng_key, x, y, t, num_sweeps):
        """``(x, total)``: ``num_sweeps`` heat-bath sweeps from ``x``; ``total`` the sum over sweeps of
        each site's conditional probabilities, ``(d, K)``."""
        values, mask = self._table(y.dtype)
        tilt = values * y[:, None] - 0.5 * t * values**2 + mask

        def potentials(x, u_x, i):
            """``U`` at the K values of site ``i`` (the rest of ``x`` fixed), given ``u_x = U(x)``."""
            if values.shape[1] == 2:  # one evaluation, at the other value: half the cost of both
                at_b = x[i] == values[i, 1]
                u_other = self.potential_fn(x.at[i].set(jnp.where(at_b, values[i, 0], values[i, 1])))
                return jnp.stack([jnp.where(at_b, u_other, u_x), jnp.where(at_b, u_x, u_other)])
            candidates = jnp.where(jnp.arange(self.dim)[None, :] == i, values[i][:, None], x[None, :])
            return jax.vmap(self.potential_fn)(candidates)

        def visit(carry, site):
            x, u_x, total = carry
            i, uniform = site
            u = potentials(x, u_x, i)
            logits = tilt[i] - u
            p = jax.nn.softmax(jnp.where(jnp.isnan(logits), -jnp.inf, logits))
            pick = jnp.minimum(jnp.sum(jnp.cumsum(p) < uniform), p.shape[0] - 1)  # inverse CDF
            return (x.at[i].set(values[i, pick]), u[pick], total.at[i].add(p)), None

        sites = jnp.tile(jnp.arange(self.dim), num_sweeps)
        uniforms = jax.random.uniform(rng_key, sites.shape, y.dtype)
        u_x = jnp.asarray(self.potential_fn(x), y.dtype)
        (x, _, total), _ = jax.lax.scan(visit, (x, u_x, jnp.zeros(values.shape, y.dtype)), (sites, uniforms))
        return x, total

    def _log_marginals(self, rng_key, y, t, state):
        key_start, key_burnin, key_sweeps = jax.random.split(rng_key, 3)
        values, mask = self._table(y.dtype)
        chains = self.num_chains

        def restart():
            keys = jax.random.split(key_start, chains * self.dim).reshape(chains, self.dim, -1)
            pick = jax.vmap(jax.vmap(lambda k, m: categorical(k, m, ())))(keys, jnp.broadcast_to(mask, (chains,) + mask.shape))
            x = values[jnp.arange(self.dim)[None, :], pick]
            if not self.num_burnin:
                return x
            burn = jax.random.split(key_burnin, chains)
            return jax.vmap(lambda k, x: self._sweeps(k, x, y, t, self.num_burnin)[0])(burn, x)

        x = jax.lax.cond(t == 0, restart, lambda: jnp.asarray(state, y.dtype))
        x, total = jax.vmap(lambda k, x: self._sweeps(k, x, y, t, self.num_sweeps))(
            jax.random.split(key_sweeps, chains), x)
        marginals = jnp.sum(total, 0) / (chains * self.num_sweeps)
        return jnp.where(mask < 0, -jnp.inf, jnp.log(marginals)), x
