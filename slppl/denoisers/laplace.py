"""The Laplace approximation as a denoiser: MAP and inverse Hessian of the potential."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.optimize import minimize

from .fit import NEWTON_DECREMENT_TOL
from .gaussian import Gaussian


def laplace(potential_fn, init_position, max_iter=1000, max_restarts=5):
    """``Gaussian(x*, H⁻¹)`` with ``x*`` a local minimiser of ``U`` and ``H = ∇²U(x*)``.

    The cheapest sensible denoiser for a unimodal posterior and the baseline for every other: with
    the second-order step its SL proposal is exactly ``N(x*, H⁻¹)``, so the exact kernel's
    acceptance measures how Gaussian the posterior is.

    BFGS, then Newton steps until the Newton decrement ``gᵀH⁻¹g`` is below 1e-6 (the point is a
    minimum to 0.001 posterior sd). Where the search stops at a saddle (a Hessian eigenvalue < 0,
    gradient ≈ 0), it restarts from a step along the descending eigenvector. It never returns a
    point that is not a stationary minimum.

    Args:
        potential_fn: ``U(x) = −log μ(x)`` on a flat vector (see :func:`slppl.flat_potential`).
        init_position: starting point of the BFGS search.
        max_restarts: escapes from saddles before giving up.

    Raises ``ValueError`` when the search diverges, does not reach a stationary point, or ends
    where the Hessian is singular (a flat direction: an improper posterior, or a non-identified
    parameter).

    Examples:
        >>> import jax.numpy as jnp
        >>> den = laplace(lambda x: 0.5 * jnp.sum((x - 1.0) ** 2 / 4.0), jnp.zeros(2))
        >>> den.means[0].round(4).tolist(), den.eigvals[0].round(4).tolist()
        ([1.0, 1.0], [4.0, 4.0])
    """
    x = jnp.asarray(init_position)
    grad_fn = jax.grad(potential_fn)
    for _ in range(max_restarts + 1):
        x = minimize(potential_fn, x, method="BFGS", options={"maxiter": max_iter}).x
        if not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError("the MAP search diverged (non-finite position); try another init_position")
        x, hess, eig, vec = _newton_polish(potential_fn, grad_fn, x)
        if eig.min() > 0:
            return Gaussian(x, np.linalg.inv(hess))
        if not np.isfinite(eig.min()) or abs(eig.min()) <= 1e-10 * np.abs(eig).max():
            break  # a flat direction, not a saddle: no step size would escape it
        # A saddle: step down the most negative curvature direction by about one unit of it.
        step = vec[:, 0] / np.sqrt(-eig.min())
        x = min((x + step, x - step), key=lambda z: float(potential_fn(z)))
    raise ValueError(
        f"no minimum with a positive definite Hessian was found (smallest eigenvalue {eig.min():.3g} at the "
        "last stationary point): the posterior may be improper or a parameter not identified; try another "
        "init_position, or a fitted denoiser (Gaussian.fit / GaussianMixture.fit on draws)"
    )


def _newton_polish(potential_fn, grad_fn, x, max_steps=20):
    """Newton steps (halved until U decreases) to a stationary point; returns x, H and H's eigensystem."""
    for _ in range(max_steps):
        hess = np.asarray(jax.hessian(potential_fn)(x), dtype=np.float64)
        hess = 0.5 * (hess + hess.T)
        eig, vec = np.linalg.eigh(hess)
        g = np.asarray(grad_fn(x), dtype=np.float64)
        if not (np.all(np.isfinite(eig)) and np.all(np.isfinite(g))):
            raise ValueError("the potential's gradient or Hessian is not finite at the MAP search's end point")
        if eig.min() <= 0:
            return x, hess, eig, vec  # not a minimum: the caller escapes the saddle
        delta = vec @ ((vec.T @ g) / eig)
        decrement = float(g @ delta)
        # Always try the step: BFGS stops on a gradient tolerance, one Newton step is exact for a quadratic.
        u0, scale = float(potential_fn(x)), 1.0
        while scale > 1e-6 and not float(potential_fn(x - scale * delta)) <= u0:
            scale /= 2
        if scale > 1e-6:
            x = x - jnp.asarray(scale * delta, x.dtype)
        if decrement < NEWTON_DECREMENT_TOL:
            hess = np.asarray(jax.hessian(potential_fn)(x), dtype=np.float64)
            hess = 0.5 * (hess + hess.T)
            eig, vec = np.linalg.eigh(hess)
            return x, hess, eig, vec
    raise ValueError(
        f"the MAP search did not reach a stationary point (|grad U| = {np.linalg.norm(g):.3g} after "
        f"{max_steps} Newton steps); the potential may be unbounded below or not smooth there"
    )
