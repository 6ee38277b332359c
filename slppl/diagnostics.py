"""Side-by-side diagnostics for comparing samplers (ArviZ summaries, ESS per second, plots)."""

import warnings

import arviz as az
import numpy as np
import pandas as pd

__all__ = ["side_by_side", "ess_per_second", "plot_comparison", "pareto_khat", "check_sl", "KHAT_THRESHOLD"]

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
    ``arviz_stats``'s ``pareto_khat(log_weights=True)``, since its ``psislw`` returned k̂ ≈ 38 on
    the near-constant weights of an exact SL kernel (arviz-stats of ArviZ 1.3). The two tail fits
    differ: the same weights gave k̂ −0.29 / 0.13 (0.x) and −0.35 / −0.01 (1.x)."""
    if hasattr(az, "psislw"):
        return float(az.psislw(log_weights, reff=1.0)[1])
    from arviz_stats.base import array_stats

    return float(array_stats.pareto_khat(log_weights, chain_axis=None, draw_axis=-1, r_eff=1.0, tail="right",
                                         log_weights=True))


def check_sl(mcmc, warn=True, threshold=KHAT_THRESHOLD):
    """Per-chain health of an SL run: Pareto k̂, acceptance, diverging proposals; warns with the fix.

    Returns a ``pandas.DataFrame`` with one row per chain. Warns (``UserWarning``) when k̂ exceeds
    ``threshold``, when every proposal of a chain diverged (NaN/Inf from the denoiser or the
    model), or when a chain's acceptance collapsed below 1 %.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> from numpyro.infer import MCMC
        >>> from slppl import SL
        >>> from slppl.denoisers import Gaussian
        >>> def model():
        ...     numpyro.sample("x", dist.Normal(0.0, 1.0))
        >>> kernel = SL(model, denoiser=Gaussian(jnp.zeros(1), jnp.eye(1)), num_steps=5)
        >>> mcmc = MCMC(kernel, num_warmup=10, num_samples=200, progress_bar=False)
        >>> mcmc.run(jax.random.PRNGKey(0), extra_fields=("proposal_log_weight",))
        >>> check_sl(mcmc).columns.tolist()
        ['pareto_k', 'accept_prob', 'diverging']
    """
    extra = mcmc.get_extra_fields(group_by_chain=True)
    accept = np.asarray(extra["accept_prob"]).mean(1)
    diverging = np.asarray(extra["diverging"]).mean(1)
    if "proposal_log_weight" in extra:
        lw = np.asarray(extra["proposal_log_weight"], dtype=np.float64)
        khat = pareto_khat(lw)
        # With several proposals per step `diverging` means "any"; "every" is read from the weights.
        all_diverged = ~np.isfinite(lw.reshape(lw.shape[0], -1)).any(1)
    else:
        khat, all_diverged = np.full(accept.shape, np.nan), diverging == 1.0
    # SL(model) records whether its global moves ran (off when warmup found them useless).
    switched_off = ~np.asarray(extra["use_global"]).any(1) if "use_global" in extra else np.zeros(accept.shape, bool)
    table = pd.DataFrame({"pareto_k": khat, "accept_prob": accept, "diverging": diverging})
    table.index.name = "chain"
    if warn:
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
                    "stay exact but may mix slowly there; ESS and R-hat may not show it. Use a longer "
                    "num_warmup, num_local >= 1, or another denoiser family, and compare with NUTS.",
                    stacklevel=2,
                )
    return table
