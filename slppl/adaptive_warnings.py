"""Warnings the adaptive kernel gives from inside its compiled loop, through host callbacks.

They name the cause and the fix as the run goes (walkers that never moved; global moves found
useless at the end of warmup); :func:`slppl.diagnostics.check_sl` reports the same conditions after
the run, which is what remains while JAX's persistent compilation cache is on.
"""

import warnings

import jax
import numpy as np

__all__ = ["in_loop_warnings", "warn_if_failed", "warn_if_useless"]


def in_loop_warnings():
    """Whether the compiled loop warns as it runs, through host callbacks: not while JAX's
    persistent compilation cache is on (``slppl.enable_compilation_cache``), since JAX never stores
    a program with host callbacks. ``check_sl(mcmc)`` reports the same conditions after the run
    (every draw diverged; the global moves switched off).

    Examples:
        >>> in_loop_warnings()   # no compilation cache set up in this process
        True
    """
    return not jax.config.jax_compilation_cache_dir


def warn_if_failed(failed, num_finite):
    if np.any(failed):
        warnings.warn(
            "SL: the walkers exploring the model during warmup never moved (every local NUTS move "
            f"diverged; {int(np.min(num_finite))} finite draws, all at their starting points), so the "
            "denoiser SL fits to them is meaningless and the chain will not move: its draws are flagged "
            "`diverging`. Check that the model's log density is finite and differentiable around "
            "its initial point (numpyro.infer.util.log_density), or pass a denoiser.",
            RuntimeWarning, stacklevel=1,
        )


def warn_if_useless(useless, mean_accept, num_local, use_partial, log_restart):
    if np.any(useless):
        rate = float(np.min(mean_accept))
        partial_moves = (
            f" and partial-path moves (restart time t_r = {float(np.exp(np.max(log_restart))):.3g}, local jumps)"
            if np.any(use_partial) else ""
        )
        action = (
            f"The chain runs on its local NUTS moves{partial_moves}, which keep it exact, and the global moves are "
            "switched off for sampling (their cost saved), so expect NUTS's mixing: no jumps between modes."
            if num_local > 0 else
            "With num_local=0 the global moves are all the chain has: its draws will be nearly constant."
        )
        warnings.warn(
            f"SL: global moves left the current point in {100 * rate:.1f}% of the warmup's steps: the "
            "denoiser fitted during warmup does not cover this posterior well enough (this happens as "
            f"the dimension grows). {action} To try: denoiser='laplace' for a near-Gaussian posterior, "
            "a longer warmup (more draws to fit), or a denoiser built for the model.",
            RuntimeWarning, stacklevel=1,
        )
