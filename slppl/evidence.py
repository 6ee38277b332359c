"""The marginal likelihood ``p(data)`` from an SL run's own proposal weights.

After warmup an SL kernel's global move draws every proposal ``(path, x)`` independently from one
fixed, normalised law ``q`` (the denoiser and the grid no longer change), and records its exact
log weight ``log γ(x) + log p(path | x) − log q(path, x)``, with ``γ = exp(−U)`` the model's
unnormalised posterior density: its joint density with the data, in the unconstrained space
NumPyro samples. The mean of these weights is therefore an unbiased estimate of ``∫ γ = p(data)``
(importance sampling on path space, the same weights the MH step accepts by), at no extra cost.
``SL(model)`` runs its proposals in whitened coordinates ``x = shift + chol·u``, so its weights
omit the map's Jacobian, ``log |det chol|``, which is added back per chain.

It is exactly as reliable as an importance sampling estimate. The weights have a finite variance
only when their tail's Pareto index k is below 0.5 (Vehtari et al., PSIS), and the standard error,
which assumes one, means nothing above it: the estimate is then typically too low, by more than its
standard error claims. So the threshold here is 0.5, not the 0.7 that suffices for posterior
expectations. k̂ is estimated from the tail the run saw: a proposal far too narrow shows too few
tail weights, and k̂ can stay near 0.7 while the estimate is off by a nat (a N(0, 0.01) proposal
for a N(0, 1) target: k̂ 0.72, −1.3 ± 0.1 against 0). ``SL(model)``'s proposal keeps a wide
defensive component, which bounds its weights wherever the posterior's tails are lighter than it. A proposal that failed (NaN/Inf) has weight 0, which is right if the proposal had
no mass there and biases the estimate low otherwise; ``check_sl`` reports their share.
"""

import warnings
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from .diagnostics import pareto_khat

__all__ = ["LogEvidence", "log_evidence"]


class LogEvidence(NamedTuple):
    """``log p(data)`` estimated from an SL run.

    Fields:
        estimate: log of the mean proposal weight over every chain.
        se: its standard error (delta method: the weights' standard error over their mean).
        pareto_k: the weights' Pareto k̂, one per chain; above 0.5 the standard error is unreliable.
        num_weights: the number of proposals it averages.
        chains: each chain's own estimate (they should agree within a few ``se·√num_chains``).
    """

    estimate: float
    se: float
    pareto_k: np.ndarray
    num_weights: int
    chains: np.ndarray


# The weights' variance is finite only for k < 0.5, which the standard error needs.
EVIDENCE_KHAT_THRESHOLD = 0.5


def log_evidence(run, warn=True, threshold=EVIDENCE_KHAT_THRESHOLD):
    """``log p(data)`` with its standard error, from the proposal weights of an SL run.

    ``run``: NumPyro's ``MCMC`` after ``run`` with an :class:`slppl.SL` kernel (an analytic, fitted
    or learned denoiser, or ``SL(model)``), or a :class:`slppl.compare.Run` of one. See the module's
    docstring for why the mean weight is the evidence and when it is not to be trusted; with
    ``warn``, a k̂ above ``threshold`` warns (``UserWarning``).

    Refused (``ValueError``) when the weights cannot estimate it: a run stopped after warmup (its
    proposal was still adapting), a denoiser estimated by inner MCMC (its proposal moves with the
    chain), a kernel run with ``correction=None`` or a final draw without a density, and
    ``SL(model)`` runs whose global moves were switched off.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> from numpyro.infer import MCMC
        >>> from slppl import SL, log_evidence
        >>> from slppl.denoisers import Gaussian
        >>> def model():
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=1.0)
        >>> kernel = SL(model, denoiser=Gaussian(jnp.array([0.5]), jnp.array([[0.5]])), num_steps=8)
        >>> mcmc = MCMC(kernel, num_warmup=10, num_samples=500, progress_bar=False)
        >>> mcmc.run(jax.random.PRNGKey(0))
        >>> ev = log_evidence(mcmc)  # the exact value is log N(1; 0, 2) = -1.5155
        >>> bool(abs(ev.estimate + 1.5155) < 4 * ev.se + 1e-3)
        True
    """
    mcmc = run.mcmc if hasattr(run, "fields") and hasattr(run, "mcmc") else run
    kernel = getattr(mcmc, "sampler", None)
    from .numpyro_adapter import SL

    if not isinstance(kernel, SL) or not hasattr(mcmc, "get_extra_fields"):
        raise TypeError(f"log_evidence reads a NumPyro MCMC run with an SL kernel, not {type(mcmc).__name__}"
                        + (f" with {type(kernel).__name__}" if kernel is not None else ""))
    # After mcmc.warmup alone the state has taken exactly num_warmup steps (collect_warmup=True
    # would then hand back the adapting proposal's weights).
    if mcmc.last_state is None or int(np.max(np.asarray(mcmc.last_state.i))) <= mcmc.num_warmup:
        raise ValueError("log_evidence needs the sampling phase: the proposal adapts during warmup, so its "
                         "weights do not estimate the evidence; call mcmc.run (after mcmc.warmup) first")
    if kernel.family is None and not getattr(kernel.denoiser, "deterministic", True):
        raise ValueError(f"{type(kernel.denoiser).__name__} is estimated by inner MCMC, so SL's proposal moves "
                         "with the chain and its weights do not estimate the evidence; use an analytic, fitted "
                         "or learned denoiser, or SL(model)")
    if kernel.correction is None or kernel.final != "gaussian":
        raise ValueError("log_evidence needs the exact kernel's weights: correction='mh' and final='gaussian'")
    fields = mcmc.get_extra_fields(group_by_chain=True)
    if "proposal_log_weight" not in fields:
        raise ValueError("this run did not record its proposals' weights; keep SL's default extra fields or "
                         "add 'proposal_log_weight' to extra_fields")
    lw = np.asarray(fields["proposal_log_weight"], dtype=np.float64)
    lw = lw.reshape(lw.shape[:2] + (-1,))
    made = ~np.isnan(lw)  # NaN: a proposal SL(model) did not make
    if "use_global" in fields:  # steps whose global move did not run record -inf for every proposal
        made &= np.asarray(fields["use_global"], bool)[..., None]
    counts = made.sum((1, 2))
    if np.any(counts == 0):
        raise ValueError("a chain made no global proposals after warmup (SL(model) switched its global moves off, "
                         "see check_sl), so there are no weights to estimate the evidence from")
    # SL(model) weighs whitened coordinates: add each chain's log |det chol| (NumPyro keeps the
    # chains' states stacked along the first axis).
    chol = getattr(mcmc.last_state, "chol", None)
    log_det = (np.zeros(lw.shape[0]) if chol is None
               else np.sum(np.log(np.abs(np.diagonal(np.asarray(chol, np.float64), axis1=-2, axis2=-1))), -1))
    log_det = np.broadcast_to(log_det, lw.shape[:1])
    weights = [chain[m] + d for chain, m, d in zip(lw, made, log_det)]
    pooled = np.concatenate(weights)
    n = pooled.size
    estimate = logsumexp(pooled) - np.log(n)
    if not np.isfinite(estimate):
        raise ValueError("every proposal after warmup failed (NaN/Inf weight): no evidence estimate; see check_sl")
    scaled = np.exp(pooled - estimate)  # mean 1
    se = float(np.std(scaled, ddof=1) / np.sqrt(n)) if n > 1 else np.inf
    chains = np.asarray([logsumexp(w) - np.log(w.size) for w in weights])
    khat = pareto_khat(lw)  # per chain, shift-invariant: the log |det| changes nothing
    if warn and np.any(khat > threshold):
        warnings.warn(f"the proposal weights' Pareto k-hat is {np.max(khat):.2f} > {threshold}: their variance may be "
                      "infinite, so the log evidence is unreliable (typically too low) and its standard error "
                      "meaningless. A proposal that covers the posterior's tails (a wider or better fitted "
                      "denoiser, SL(model)'s own fit) lowers k-hat.",
                      stacklevel=2)
    return LogEvidence(float(estimate), se, khat, int(n), chains)
