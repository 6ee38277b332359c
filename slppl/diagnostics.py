"""Side-by-side diagnostics for comparing samplers (ArviZ summaries, ESS per second, plots)."""

import warnings

import arviz as az
import numpy as np
import pandas as pd

__all__ = ["side_by_side", "ess_per_second", "plot_comparison", "pareto_khat", "check_sl", "KHAT_THRESHOLD",
           "RHAT_THRESHOLD"]

KHAT_THRESHOLD = 0.7

COLUMNS = ("mean", "sd", "ess_bulk", "ess_tail", "r_hat")


def side_by_side(idatas, var_names=None, columns=COLUMNS):
    """One table with the ArviZ summary of each sampler next to the others.

    Args:
        idatas: ``{"NUTS": idata, "SL": idata, ...}`` (anything ``az.summary`` accepts).
        var_names: variables to summarise (all by default).
        columns: summary columns to keep.

    Examples:
        >>> import numpy as np, arviz as az
        >>> draws = {"x": np.random.default_rng(0).normal(size=(2, 100))}
        >>> a = az.from_dict(draws) if az.__version__.startswith("0.") else az.from_dict({"posterior": draws})
        >>> side_by_side({"A": a, "B": a}).columns.get_level_values(0).unique().tolist()
        ['A', 'B']
    """
    tables = {name: az.summary(idata, var_names=var_names)[list(columns)] for name, idata in idatas.items()}
    return pd.concat(tables, axis=1)


def ess_per_second(idata, seconds, var_names=None):
    """Smallest bulk ESS over all scalar parameters, divided by the wall time.

    Examples:
        >>> import numpy as np, arviz as az
        >>> draws = {"x": np.random.default_rng(0).normal(size=(4, 500))}
        >>> a = az.from_dict(draws) if az.__version__.startswith("0.") else az.from_dict({"posterior": draws})
        >>> ess_per_second(a, 2.0) > 500
        True
    """
    ess = az.ess(idata, var_names=var_names, method="bulk")
    return float(min(np.min(ess[v].values) for v in ess.data_vars)) / seconds


def plot_comparison(draws, path, reference=None, title=None):
    """Traces (one panel per chain) and the pooled histogram of a scalar summary for each sampler; saves a PNG.

    Args:
        draws: ``{"NUTS": array (chains, draws), "SL": ...}``.
        path: where to write the PNG.
        reference: optional ``(grid, density)`` drawn over the histograms.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> d = {"A": np.random.default_rng(0).normal(size=(2, 50))}
        >>> path = os.path.join(tempfile.mkdtemp(), "c.png")
        >>> plot_comparison(d, path); os.path.exists(path)
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_chains = max(np.asarray(v).shape[0] for v in draws.values())
    # One panel per chain: overplotted chains of a fast-mixing sampler read as a solid block.
    fig, axes = plt.subplots(num_chains + 1, len(draws), figsize=(5 * len(draws), 1.3 * num_chains + 3),
                             squeeze=False, gridspec_kw={"height_ratios": [1] * num_chains + [2.5]})
    for col, (name, value) in enumerate(draws.items()):
        value = np.asarray(value)
        lo, hi = value.min(), value.max()
        for c in range(num_chains):
            ax = axes[c, col]
            if c < value.shape[0]:
                ax.plot(value[c], lw=0.3, color=f"C{c}")
                ax.set_ylim(lo, hi)
            ax.set_ylabel(f"chain {c}", fontsize=8)
            ax.tick_params(labelsize=7, labelbottom=c == num_chains - 1)
        axes[0, col].set_title(f"{name}: trace, one chain per panel")
        axes[num_chains - 1, col].set_xlabel("draw")
        axes[-1, col].hist(value.ravel(), bins=80, density=True, alpha=0.6, label=f"{name} (pooled)")
        if reference is not None:
            axes[-1, col].plot(*reference, "k", lw=1.2, label="target")
        axes[-1, col].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pareto_khat(log_weights):
    """Pareto k̂ (PSIS, Vehtari et al.) of SL path weights, one per chain.

    SL's answer to divergences: the exact weights ``π/q`` of the proposals measure how well the
    proposal covers the posterior. k̂ < 0.5 is good, 0.5–0.7 usable, > 0.7 means the proposal
    misses part of the posterior (the chain is still exact, but mixes slowly where the proposal
    is thin, and its ESS may be unreliable).

    Args:
        log_weights: ``(chains, draws)`` log weights (``(chains, draws, K)`` with ``K`` proposals
            per step), or an ``MCMC`` run with an SL kernel that collected its
            ``proposal_log_weight`` field (the adaptive kernel does by default).

    Examples:
        >>> import numpy as np
        >>> lw = np.random.default_rng(0).normal(size=(2, 2000)) * 0.3  # near-constant weights
        >>> bool(np.all(pareto_khat(lw) < 0.5))
        True
    """
    if hasattr(log_weights, "get_extra_fields"):
        log_weights = log_weights.get_extra_fields(group_by_chain=True)["proposal_log_weight"]
    lw = np.asarray(log_weights, dtype=np.float64)
    lw = lw.reshape(lw.shape[0], -1) if lw.ndim > 2 else np.atleast_2d(lw)
    khat = []
    for chain in lw:
        finite = chain[np.isfinite(chain)]
        if finite.size < 10:
            khat.append(np.inf)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            khat.append(_psis_khat(finite - finite.max()))
    return np.asarray(khat)


def _psis_khat(log_weights):
    """PSIS k̂ of the right tail of the weights, from ArviZ: ``az.psislw`` on 0.x; on 1.x
    ``arviz_stats``'s ``pareto_khat`` on the weights, since its ``psislw`` returned k̂ ≈ 38 on
    the near-constant weights of an exact SL kernel (arviz-stats of ArviZ 1.3)."""
    if hasattr(az, "psislw"):
        return float(az.psislw(log_weights, reff=1.0)[1])
    from arviz_stats.base import array_stats

    # arviz-stats 1.3's pareto_khat(log_weights=True) fits its Pareto tail to the log weights
    # themselves (its _pareto_khat does not pass the flag on to _ps_tail), which made k̂ blind
    # to a heavy tail (0.075 for weights whose tail index is 0.9 and for ones of 4.9 alike):
    # the weights are given instead.
    weights = np.exp(log_weights - np.max(log_weights))
    try:
        khat = float(array_stats.pareto_khat(weights, chain_axis=None, draw_axis=-1, r_eff=1.0, tail="right"))
    except ValueError:  # "All tail values are the same": constant weights, no tail at all
        return -np.inf
    # NaN: the tail's weights underflowed against the largest (log weights spread over hundreds
    # of nats), so a few weights carry everything: as heavy a tail as there is.
    return khat if np.isfinite(khat) else np.inf


RHAT_THRESHOLD = 1.01
# Rejected NaN/Inf proposals are routine in a proposal's far tails; above this share they are warned of.
NAN_PROPOSAL_THRESHOLD = 0.01


def _sl_record(run):
    """``(fields, samples)`` of an SL run, each ``{name: (chains, draws, ...)}``, from an ``MCMC``,
    a :class:`slppl.compare.Run` or ArviZ data; ``TypeError`` when the run is not SL's."""
    if hasattr(run, "fields") and hasattr(run, "samples") and hasattr(run, "mcmc"):  # compare's Run
        _require_sl(run.mcmc)
        return {k: np.asarray(v) for k, v in run.fields.items()}, run.samples
    if hasattr(run, "get_extra_fields"):  # NumPyro's MCMC
        _require_sl(run)
        fields = {k: np.asarray(v) for k, v in run.get_extra_fields(group_by_chain=True).items()}
        samples = run.get_samples(group_by_chain=True) if hasattr(run, "get_samples") else {}
        return fields, samples
    stats = _group(run, "sample_stats")
    if stats is None:
        raise TypeError(f"check_sl takes an MCMC run with SL, a compare() run or ArviZ data, not {type(run).__name__}")
    # ArviZ renames NumPyro's accept_prob.
    fields = {{"acceptance_rate": "accept_prob"}.get(k, k): np.asarray(stats[k]) for k in stats.data_vars}
    if "proposal_log_weight" not in fields:
        raise TypeError("these ArviZ data hold no SL proposal weights (sample_stats.proposal_log_weight): not an "
                        "SL run, or one recorded without them; check_sl needs an SL run")
    posterior = _group(run, "posterior")
    return fields, ({k: np.asarray(posterior[k]) for k in posterior.data_vars} if posterior is not None else {})


def _group(data, name):
    try:
        return data[name] if not hasattr(data, name) else getattr(data, name)
    except (KeyError, TypeError):
        return None


def _require_sl(mcmc):
    kernel = getattr(mcmc, "sampler", None) or getattr(mcmc, "kernel", None)
    if kernel is None:
        return  # a stand-in with extra fields only
    from .numpyro_adapter import SL

    is_sl = isinstance(kernel, SL) or type(kernel).__module__ == "slppl.pyro"
    if not is_sl:
        raise TypeError(
            f"check_sl checks SL runs; this run used {type(kernel).__name__}. For other samplers read "
            "numpyro.diagnostics.print_summary(samples) or arviz.summary(idata) (R-hat, ESS, divergences)."
        )


def check_sl(run, warn=True, threshold=KHAT_THRESHOLD, rhat_threshold=RHAT_THRESHOLD):
    """Per-chain health of an SL run: Pareto k̂, acceptance, divergences, R-hat; warns with the fix.

    ``run``: NumPyro's ``MCMC`` after an SL run, a :class:`slppl.compare.Run` (``result.runs["SL"]``)
    or its ArviZ data. Returns a ``pandas.DataFrame`` with one row per chain: ``pareto_k``,
    ``accept_prob``, ``diverging`` (share of steps NumPyro's flag marks: any NaN/Inf in the step),
    ``nan_proposals`` (share of SL's proposals with a NaN/Inf log density, each rejected) and
    ``r_hat``. Warns (``UserWarning``) when k̂ exceeds ``threshold``, when every proposal of a
    chain diverged (NaN/Inf from the denoiser or the model), when a chain's acceptance collapsed
    below 1 %, when ``SL(model)`` switched its global moves off, when a local move diverged, when
    more than 1 % of the proposals were NaN/Inf (fewer are routine far in a proposal's tails), and
    when the chains disagree (largest split R-hat over the latent scalars above ``rhat_threshold``). A run that is
    not SL's raises ``TypeError`` saying so. SL records its proposals' weights by default, so
    ``extra_fields`` is not needed.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> from numpyro.infer import MCMC
        >>> from slppl import SL
        >>> from slppl.denoisers import Gaussian
        >>> def model():
        ...     numpyro.sample("x", dist.Normal(0.0, 1.0))
        >>> kernel = SL(model, denoiser=Gaussian(jnp.zeros(1), jnp.eye(1)), num_steps=5)
        >>> mcmc = MCMC(kernel, num_warmup=10, num_samples=200, progress_bar=False)
        >>> mcmc.run(jax.random.PRNGKey(0))
        >>> check_sl(mcmc).columns.tolist()
        ['pareto_k', 'accept_prob', 'diverging', 'nan_proposals', 'r_hat']
    """
    from numpyro.diagnostics import split_gelman_rubin

    extra, samples = _sl_record(run)
    accept = np.asarray(extra["accept_prob"], dtype=np.float64).mean(1)
    diverging_steps = np.asarray(extra["diverging"], dtype=bool)
    diverging = diverging_steps.astype(np.float64).mean(1)
    if "proposal_log_weight" in extra:
        lw = np.asarray(extra["proposal_log_weight"], dtype=np.float64)
        khat = pareto_khat(lw)
        lw = lw.reshape(lw.shape[:2] + (-1,))
        # Steps where the global move ran (SL(model) records -inf for every proposal of a step
        # it skipped); with several proposals, a step whose every proposal failed counts too.
        ran = (np.asarray(extra["use_global"], bool) if "use_global" in extra
               else np.isfinite(lw).any(-1) | (lw.shape[-1] == 1))
        # NaN: a proposal not made (SL(model) makes only as many as pay after warmup); -inf: failed.
        made = ~np.isnan(lw) & ran[..., None]
        failed = ~np.isfinite(lw) & made
        nan_proposals = failed.sum((1, 2)) / np.maximum(made.sum((1, 2)), 1)
        all_diverged = ran.any(1) & ~(np.isfinite(lw) & ran[..., None]).any((1, 2))
        # `diverging` is NumPyro's flag for any numerical failure in the step; what is not a
        # failed proposal is a divergent local move (NUTS or partial path).
        local_diverging = (diverging_steps & ~failed.any(-1)).mean(1)
    else:
        khat, all_diverged = np.full(accept.shape, np.nan), diverging == 1.0
        nan_proposals, local_diverging = np.full(accept.shape, np.nan), diverging
    # SL(model) records whether its global moves ran (off when warmup found them useless).
    switched_off = ~np.asarray(extra["use_global"]).any(1) if "use_global" in extra else np.zeros(accept.shape, bool)
    rhats = [np.ravel(split_gelman_rubin(np.asarray(v, dtype=np.float64))) for v in samples.values()
             if np.ndim(v) >= 2 and np.shape(v)[0] > 1 and np.shape(v)[1] >= 4]
    rhat = float(np.nanmax(np.concatenate(rhats))) if rhats and np.isfinite(np.concatenate(rhats)).any() else np.nan
    table = pd.DataFrame({"pareto_k": khat, "accept_prob": accept, "diverging": diverging,
                          "nan_proposals": nan_proposals, "r_hat": np.full(accept.shape, rhat)})
    table.index.name = "chain"
    if not warn:
        return table
    if np.isnan(khat).all() and not switched_off.all():
        warnings.warn("no proposal weights recorded, so no Pareto k-hat: run SL with its default extra fields "
                      "(or include 'proposal_log_weight' in extra_fields)", stacklevel=2)
    if rhat > rhat_threshold:
        warnings.warn(
            f"the chains disagree: largest split R-hat {rhat:.3f} > {rhat_threshold}. Some chain has not "
            "found or not left part of the posterior (a mode, a funnel's neck). Run longer (num_warmup, "
            "num_samples), compare with NUTS, and for SL(model) try more walkers (num_walkers=32) or "
            "num_local=1.", stacklevel=2,
        )
    for c, row in table.iterrows():
        if switched_off[c]:
            # No proposal and no NaN: SL(model) switched its global moves off at the end of warmup.
            warnings.warn(
                f"chain {c}: SL's global moves were switched off after warmup, where they almost never "
                "left the current point (the end-of-warmup RuntimeWarning gave the rate); the chain ran on "
                "its local moves: exact, but with NUTS's mixing and no jumps between modes.",
                stacklevel=2,
            )
        elif all_diverged[c]:
            warnings.warn(
                f"chain {c}: every SL proposal diverged (NaN/Inf from the denoiser or the model); the chain "
                "never moved by SL. Check the model's potential at the denoiser's draws and the denoiser's "
                "output (slppl.sample(...).diverging shows which), or give SL a finite-everywhere denoiser.",
                stacklevel=2,
            )
        elif row.accept_prob < 0.01:
            warnings.warn(
                f"chain {c}: SL acceptance {row.accept_prob:.4f} has collapsed: the denoiser's proposals "
                "almost never match the posterior. Use a longer num_warmup, num_local >= 1, another "
                "denoiser family, or compare with NUTS.",
                stacklevel=2,
            )
        elif row.pareto_k > threshold:
            warnings.warn(
                f"chain {c}: Pareto k-hat {row.pareto_k:.2f} of the SL path weights exceeds {threshold}: the "
                "proposal misses part of the posterior (a funnel's neck, a mode, a heavy tail). The draws "
                "stay exact but may mix slowly there; ESS and R-hat may not show it. Reparameterise a "
                "funnel (a hierarchical scale: numpyro.infer.reparam.LocScaleReparam); otherwise use a "
                "longer num_warmup, num_local >= 1, or another denoiser family, and compare with NUTS.",
                stacklevel=2,
            )
        if local_diverging[c] > 0 and not all_diverged[c]:
            warnings.warn(
                f"chain {c}: {local_diverging[c]:.1%} of the steps had a divergent local move (NUTS or a "
                "partial path: a funnel or a hard boundary). Reparameterise as for NUTS (e.g. "
                "numpyro.infer.reparam.LocScaleReparam for a hierarchical scale), or raise "
                "target_accept_prob.", stacklevel=2,
            )
        if nan_proposals[c] > NAN_PROPOSAL_THRESHOLD and not all_diverged[c]:
            warnings.warn(
                f"chain {c}: {nan_proposals[c]:.1%} of SL's proposals had a NaN/Inf log density (each was "
                "rejected, so none entered the draws): the denoiser proposes where the model over- or "
                "underflows. If the model's density is positive there, SL never proposes that region; "
                "check the model at such points (slppl.sample(...).diverging shows which), or run in float64.",
                stacklevel=2,
            )
    return table
