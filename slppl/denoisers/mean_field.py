"""The mean-field denoiser of a law on binary coordinates, from its potential's gradient."""

import jax
import jax.numpy as jnp
import numpy as np

from .base import Denoiser
from .finite import product_draw, product_log_prob

__all__ = ["MeanField"]


class MeanField(Denoiser):
    """Mean-field estimate of ``E[x | y_t = y]`` for ``μ ∝ exp(−U)`` on ``x ∈ Π_i {a_i, b_i}``.

    The tilted measure ``μ_{t,y}(x) ∝ exp(−U(x) + ⟨y, x⟩ − t|x|²/2)`` is approximated by a product
    law with means ``m``, the fixed point of

        m_i = a_i + (b_i − a_i)·σ((b_i − a_i)·(y_i − ∂_i U(m)) − t·(b_i² − a_i²)/2),

    found by ``num_iters`` damped iterations from the midpoint. The local field ``(b_i − a_i)·∂_i U(m)``
    is the change of ``U`` between ``x_i = b_i`` and ``a_i`` with the other coordinates at their
    means, exactly so where ``U`` is linear in each coordinate (a pairwise Ising model, Bernoulli
    indicators in a linear predictor), approximately elsewhere: one gradient gives every field, as
    in Gibbs-with-Gradients (Grathwohl et al. 2021). ``U`` must accept points between the values
    (NumPyro's Bernoulli ``log_prob`` does; a ``Categorical`` indexing by its value does not).

    Mean field ignores the correlations between coordinates (no Onsager reaction term), so it is
    a proposal, not the answer: with ``final="product"`` and ``correction="mh"`` the kernel stays
    exact and the approximation only moves its acceptance. The covariance is mean field's own,
    ``diag((b − a)²·p(1 − p))``.

    Args:
        potential_fn: ``U`` on flat vectors of length ``d``.
        values: ``(a, b)`` for every coordinate, or a ``(d, 2)`` array of them.
        dim: ``d`` (needed when ``values`` is one pair).
        num_iters, damping: the fixed-point iteration.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> J = 0.3 * (jnp.ones((3, 3)) - jnp.eye(3))  # a ferromagnet on 3 spins
        >>> den = MeanField(lambda x: -0.5 * x @ J @ x, values=(-1.0, 1.0), dim=3)
        >>> m, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.array([2.0, 0.0, 0.0]), 1.0, ())
        >>> bool(m[0] > m[1] > 0.0)   # the field on spin 0 pulls its neighbours
        True
    """

    def __init__(self, potential_fn, values=(0.0, 1.0), dim=None, num_iters=50, damping=0.5):
        values = np.asarray(values, dtype=float)  # concrete: checked here, a constant of the kernel
        if values.ndim == 1:
            if values.shape != (2,) or dim is None:
                raise ValueError("values must be one pair (a, b) with dim=d, or a (d, 2) array of pairs")
            values = np.broadcast_to(values, (int(dim), 2))
        if values.ndim != 2 or values.shape[1] != 2 or not np.all(values[:, 1] > values[:, 0]):
            raise ValueError(f"values must be (d, 2) pairs a < b, got shape {values.shape}")
        if dim is not None and int(dim) != values.shape[0]:
            raise ValueError(f"dim={dim} but values has {values.shape[0]} rows")
        if not 0.0 < damping <= 1.0 or int(num_iters) < 1:
            raise ValueError("damping must be in (0, 1] and num_iters >= 1")
        self.potential_fn = potential_fn
        self.values = values
        self.dim = int(values.shape[0])
        self.num_iters = int(num_iters)
        self.damping = float(damping)

    def _pair(self, dtype):
        """``(a, b)``: each coordinate's two values."""
        return jnp.asarray(self.values[:, 0], dtype), jnp.asarray(self.values[:, 1], dtype)

    def _probs(self, y, t):
        """``P(x_i = b_i)`` under the mean-field product law."""
        a, b = self._pair(y.dtype)
        grad = jax.grad(self.potential_fn)
        bias = (b - a) * y - 0.5 * t * (b**2 - a**2)

        def update(_, p):
            m = a + (b - a) * p
            new = jax.nn.sigmoid(bias - (b - a) * grad(m))
            return (1.0 - self.damping) * p + self.damping * new

        return jax.lax.fori_loop(0, self.num_iters, update, jnp.full_like(y, 0.5))

    def estimate(self, rng_key, y, t, state):
        a, b = self._pair(y.dtype)
        return a + (b - a) * self._probs(y, t), state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        a, b = self._pair(y.dtype)
        p = self._probs(y, t)
        return a + (b - a) * p, jnp.diag((b - a) ** 2 * p * (1.0 - p)), state, ()

    def check_product(self):
        """Every combination of the coordinates' values is in the support: nothing to check."""

    def _log_marginals(self, y, t):
        p = self._probs(y, t)
        return jnp.stack([jnp.log1p(-p), jnp.log(p)], -1)

    def sample_product(self, rng_key, y, t, state):
        """``(x, log r(x), state)``: each coordinate from its mean-field marginal."""
        x, log_r = product_draw(rng_key, self._log_marginals(y, t), jnp.asarray(self.values, y.dtype))
        return x, log_r, state

    def product_log_prob(self, rng_key, y, t, state, x):
        """``(log r(x), state)``: the law :meth:`sample_product` draws from, at ``x``."""
        return product_log_prob(self._log_marginals(y, t), jnp.asarray(self.values, y.dtype), x), state
