"""The TAP denoiser of a pairwise model on binary coordinates, solved by AMP (mean field plus Onsager)."""

import jax
import jax.numpy as jnp

from .mean_field import MeanField

__all__ = ["TAP"]


class TAP(MeanField):
    """TAP estimate of ``E[x | y_t = y]`` for ``μ ∝ exp(−U)`` on ``x ∈ Π_i {a_i, b_i}``, ``U`` pairwise.

    Mean field (:class:`MeanField`) plus the Onsager reaction term: with couplings ``J = −∇²U``
    and ``v_j = (b_j − a_j)²·p_j(1 − p_j)`` the variances of the product law, the local field of
    coordinate ``i`` gains ``½·(a_i + b_i − 2m_i)·Σ_j J_ij²·v_j`` (``−m_i·Σ_j J_ij²(1 − m_j²)`` for
    ±1 spins: the second order of Plefka's expansion, Thouless–Anderson–Palmer 1977). The fixed
    point is found by approximate message passing, the Onsager term taken at the previous iterate
    and no damping (Bolthausen 2014; El Alaoui, Montanari & Sellke 2022 sample the
    Sherrington–Kirkpatrick model with it, Montanari & Wu 2023 the Z2-synchronisation posterior):
    on SK a damped iteration of TAP's equations reaches the same fixed point, but on the Z2
    posterior it stalled at acceptance 0.053 where AMP reached 0.417
    (``benchmarks/discrete_integrators.py``, 200 spins, two-point move).

    Exact in the limit for dense pairwise models with weak couplings (SK-like, ``J_ij = O(1/√d)``);
    elsewhere a proposal like mean field, which the exact correction keeps honest.

    Args:
        potential_fn: ``U`` on flat vectors of length ``d``; quadratic in ``x`` (pairwise).
        values, dim, num_iters: as :class:`MeanField`.
        couplings: ``J = −∇²U`` (``(d, d)``); by default the Hessian at the midpoint of the values,
            computed here (``d`` Hessian-vector products; inside ``SL(model)``, once per step,
            since the model's potential is rebuilt there). Its diagonal is ignored.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> J = 0.3 * (jnp.ones((3, 3)) - jnp.eye(3))
        >>> den = TAP(lambda x: -0.5 * x @ J @ x, values=(-1.0, 1.0), dim=3)
        >>> m, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.array([2.0, 0.0, 0.0]), 1.0, ())
        >>> bool(m[0] > m[1] > 0.0)
        True
    """

    def __init__(self, potential_fn, values=(0.0, 1.0), dim=None, couplings=None, num_iters=50):
        super().__init__(potential_fn, values, dim, num_iters, damping=1.0)
        if couplings is None:
            couplings = -jax.hessian(potential_fn)(jnp.asarray(self.values.mean(1)))
        couplings = jnp.asarray(couplings, jnp.result_type(float))  # may be traced (a model's potential)
        if couplings.shape != (self.dim, self.dim):
            raise ValueError(f"couplings must be ({self.dim}, {self.dim}), got {couplings.shape}")
        self.couplings_sq = couplings**2 * (1.0 - jnp.eye(self.dim, dtype=couplings.dtype))

    def _probs(self, rng_key, y, t, state):
        a, b = self._pair(y.dtype)
        grad = jax.grad(self.potential_fn)
        bias = (b - a) * y - 0.5 * t * (b**2 - a**2)
        squared = jnp.asarray(self.couplings_sq, y.dtype)

        def update(_, carry):
            p, m_prev = carry
            m = a + (b - a) * p
            onsager = 0.5 * (a + b - 2.0 * m_prev) * (squared @ ((b - a) ** 2 * p * (1.0 - p)))
            return jax.nn.sigmoid(bias + (b - a) * (onsager - grad(m))), m

        p = jnp.full_like(y, 0.5)
        return jax.lax.fori_loop(0, self.num_iters, update, (p, a + (b - a) * p))[0], state
