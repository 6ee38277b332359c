"""The 40-mode mixture in 2-d (the FAB benchmark): acceptance and mode coverage of the exact kernel.

40 equal-weight N(a_k, I) with means spread uniformly over [−40, 40]², written out in ``cases.py`` (drawn
once with numpy's default_rng(0) and rounded), so the benchmark does not depend on a random-number
library's version. SL uses the exact denoiser, the default grid (UniformOU) and integrator; NUTS
is not run: a chain started in one mode of this target never leaves it. Mode frequencies are
pooled over 4 chains and compared with 1/40.

Run: ``python benchmarks/fab40.py``; writes ``benchmarks/results/fab40.md``.
"""

import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.diagnostics import effective_sample_size

jax.config.update("jax_enable_x64", True)

from slppl import kernel as core  # noqa: E402
from slppl.denoisers import GaussianMixture  # noqa: E402
from slppl.integrators import SecondOrder  # noqa: E402
from slppl.time_grids import UniformOU  # noqa: E402

from cases import FAB40_MEANS as MEANS  # noqa: E402


def main():
    den = GaussianMixture(np.full(40, 1 / 40), MEANS, np.stack([np.eye(2)] * 40))
    U = lambda x: -den.log_prob(x)
    chains, draws = 4, 2500
    lines = [
        "# 40-mode mixture in 2-d (FAB): exact SL kernel, default grid and integrator",
        "",
        f"jax {jax.__version__}, float64, {platform.machine()}, {os.cpu_count()} CPU cores; "
        f"{chains} chains x {draws} steps after 20 burn-in.",
        "",
        "| steps | acceptance ± MCSE | max abs(freq − 1/40) | its MCSE-scale (sqrt(p(1−p)/ESS) at p = 1/40) | modes visited |",
        "|---|---|---|---|---|",
    ]
    for k in (25, 50, 100):
        step = core.build_kernel(den, UniformOU().times(k), SecondOrder())

        def run(key):
            def body(s, _):
                s = step(s, U)
                return s, (s.accept_prob, s.z)

            return jax.lax.scan(body, core.init(jnp.zeros(2), U, key, den), None, length=20 + draws)[1]

        acc, z = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), chains))
        acc, z = np.asarray(acc[:, 20:]), np.asarray(z[:, 20:])
        mode = np.argmin(((z[..., None, :] - MEANS) ** 2).sum(-1), -1)
        freq = np.bincount(mode.ravel(), minlength=40) / mode.size
        ess = float(effective_sample_size((mode == np.argmax(freq)).astype(float)[..., None])[0])
        acc_se = acc.std() / np.sqrt(float(effective_sample_size(acc[..., None])[0]))
        p = 1 / 40
        lines.append(f"| {k} | {acc.mean():.3f} ± {acc_se:.3f} | {np.abs(freq - p).max():.4f} "
                     f"| {np.sqrt(p * (1 - p) / ess):.4f} | {int((freq > 0).sum())} / 40 |")
        print(lines[-1], flush=True)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fab40.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
