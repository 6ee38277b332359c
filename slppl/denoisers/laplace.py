"""The Laplace approximation as a denoiser: MAP and inverse Hessian of the potential."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.optimize import minimize

from .gaussian import Gaussian


def laplace(potential_fn, init_position, max_iter=1000):
    """``Gaussian(x*, H⁻¹)`` with ``x*`` the minimiser of ``U`` and ``H = ∇²U(x*)``.

    The cheapest sensible denoiser for a unimodal posterior and the baseline for every other: with
    the second-order step its SL proposal is exactly ``N(x*, H⁻¹)``, so the exact kernel's
    acceptance measures how Gaussian the posterior is.

    Args:
        potential_fn: ``U(x) = −log μ(x)`` on a flat vector (see :func:`slppl.flat_potential`).
        init_position: starting point of the BFGS search.

    Raises ``ValueError`` when the search fails or the Hessian is not positive definite.

    Example:
        >>> import jax.numpy as jnp
        >>> den = laplace(lambda x: 0.5 * jnp.sum((x - 1.0) ** 2 / 4.0), jnp.zeros(2))
        >>> den.means[0].round(4).tolist(), den.eigvals[0].round(4).tolist()
        ([1.0, 1.0], [4.0, 4.0])
    """
    x0 = jnp.asarray(init_position)
    res = minimize(potential_fn, x0, method="BFGS", options={"maxiter": max_iter})
    x_map = res.x
    if not bool(jnp.all(jnp.isfinite(x_map))):
        raise ValueError("the MAP search diverged (non-finite position); try another init_position")
    hess = _hessian(potential_fn, x_map)
    # One Newton step polishes what BFGS's gradient tolerance leaves (exact for a quadratic U).
    x_newton = x_map - jnp.linalg.solve(jnp.asarray(hess, x_map.dtype), jax.grad(potential_fn)(x_map))
    if bool(jnp.all(jnp.isfinite(x_newton))) and potential_fn(x_newton) <= potential_fn(x_map):
        x_map = x_newton
        hess = _hessian(potential_fn, x_map)
    return Gaussian(x_map, np.linalg.inv(hess))


def _hessian(potential_fn, x):
    hess = np.asarray(jax.hessian(potential_fn)(x), dtype=np.float64)
    hess = 0.5 * (hess + hess.T)
    eig = np.linalg.eigvalsh(hess)
    if not np.all(np.isfinite(eig)) or eig.min() <= 0:
        raise ValueError(
            f"the Hessian at the MAP is not positive definite (smallest eigenvalue {eig.min():.3g}); "
            "the posterior may be improper, or the search stopped at a saddle: try another init_position"
        )
    return hess
