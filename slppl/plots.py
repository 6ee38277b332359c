"""Plots for comparing samplers: marginals over a reference, rank plots, SL localisation paths.

Plain matplotlib on arrays, so the same figures come out on ArviZ 0.x and 1.x (whose plotting
APIs differ). Each function writes one PNG and returns its path.
"""

import os

import numpy as np

__all__ = ["marginals", "ranks", "localisation"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def marginals(draws, names, path, reference=None, bins=60):
    """One panel per parameter: each sampler's pooled histogram, and the reference's (its draws as
    a histogram, its moments as a normal curve).

    Args:
        draws: ``{sampler: {"site[i]": (chains, draws)}}``.
        names: the parameters to show.
        path: the PNG to write.
        reference: optional ``{"site[i]": (mean, sd)}`` or ``{"site[i]": draws}``.

    Examples:
        >>> import numpy as np, os, tempfile
        >>> d = {"A": {"x": np.random.default_rng(0).normal(size=(2, 100))}}
        >>> os.path.exists(marginals(d, ["x"], os.path.join(tempfile.mkdtemp(), "m.png"), {"x": (0.0, 1.0)}))
        True
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        values = [np.asarray(d[name]).ravel() for d in draws.values()]
        lo, hi = np.percentile(np.concatenate(values), [0.5, 99.5])
        edges = np.linspace(lo, hi, bins + 1)
        for sampler, v in zip(draws, values):
            ax.hist(v, bins=edges, density=True, histtype="step", lw=1.4, label=sampler)
        ref = None if reference is None else reference.get(name)
        if isinstance(ref, tuple) and len(ref) == 2 and np.ndim(ref[0]) == 0:
            grid = np.linspace(lo, hi, 200)
            ax.plot(grid, np.exp(-0.5 * ((grid - ref[0]) / ref[1]) ** 2) / (ref[1] * np.sqrt(2 * np.pi)),
                    "k--", lw=1, label="reference (normal, its mean and sd)")
        elif ref is not None:
            ax.hist(np.asarray(ref).ravel(), bins=edges, density=True, color="0.8", label="reference", zorder=0)
        ax.set_title(name)
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)


def ranks(draws, names, path, bins=10):
    """Rank plots (Vehtari et al. 2021): per sampler and parameter, the histogram of each chain's
    ranks among all chains' draws. Chains that sample the same distribution give flat, overlapping
    bars; a chain stuck in one mode or region sticks out.

    Examples:
        >>> import numpy as np, os, tempfile
        >>> d = {"A": {"x": np.random.default_rng(0).normal(size=(4, 200))}}
        >>> os.path.exists(ranks(d, ["x"], os.path.join(tempfile.mkdtemp(), "r.png")))
        True
    """
    from scipy.stats import rankdata

    plt = _pyplot()
    fig, axes = plt.subplots(len(draws), len(names), figsize=(3.2 * len(names), 2.2 * len(draws)), squeeze=False)
    for row, (sampler, d) in enumerate(draws.items()):
        for col, name in enumerate(names):
            value = np.asarray(d[name])
            r = rankdata(value.ravel()).reshape(value.shape)
            edges = np.linspace(0, r.size, bins + 1)
            ax = axes[row, col]
            expected = value.shape[1] / bins
            top = 2.5 * expected
            for c, chain in enumerate(r):
                counts, _ = np.histogram(chain, edges)
                ax.step(np.arange(bins + 1), np.append(counts, counts[-1]), where="post", lw=1, label=f"chain {c}")
                top = max(top, 1.05 * counts.max())
            ax.axhline(expected, color="k", ls=":", lw=0.8)
            # The same scale in every panel: uniform ranks sit on the dotted line.
            ax.set_ylim(0, top)
            ax.set_title(f"{sampler}: {name}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    return _save(fig, path)


def localisation(times, means, targets, path, title=None):
    """``m(y_t, t)`` against ``t`` (log scale) along a few SL observation paths, each ending at the
    draw it localises onto (dashed): the denoiser's guess moves from the posterior mean to one point.

    Args:
        times: ``(K,)`` grid times.
        means: ``(paths, K)`` the denoiser's estimate of one coordinate along each path.
        targets: ``(paths,)`` that coordinate of the draw each path leads to.

    Examples:
        >>> import numpy as np, os, tempfile
        >>> t = np.geomspace(1e-2, 1e3, 30)
        >>> m = np.tanh(t)[None] * np.array([[1.0], [-1.0]])
        >>> os.path.exists(localisation(t, m, np.array([1.0, -1.0]), os.path.join(tempfile.mkdtemp(), "l.png")))
        True
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for k, (m, x) in enumerate(zip(means, targets)):
        line, = ax.plot(times, m, lw=1.3)
        ax.axhline(x, color=line.get_color(), ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("t (signal-to-noise of y_t = t·x + B_t)")
    ax.set_ylabel("m(y_t, t), first coordinate")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)
