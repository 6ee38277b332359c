"""The Sherrington–Kirkpatrick model at high temperature: SL with a TAP denoiser against Glauber and theory.

``μ(x) ∝ exp(β·Σ_{i<j} A_ij x_i x_j)`` on ``x ∈ {−1, 1}^n``, ``A`` a GOE matrix (``A_ij ~ N(0, 1/n)``),
no field; El Alaoui, Montanari & Sellke (2022) sample it by stochastic localisation with an AMP
denoiser for β < 1/2. Here the same construction runs as an exact kernel: the TAP denoiser
(solved by AMP), the two-point move, and path-space Metropolis–Hastings.

Two statistics of one instance, each against long heat-bath Glauber chains on the same couplings
(in Monte Carlo standard errors, from ESS) and against the replica-symmetric theory of the
infinite system:

- the energy per spin ``H/n = −Σ_{i<j} A_ij x_i x_j / n``, theory ``−β/2``;
- the overlap of two independent draws, ``q = ⟨x¹, x²⟩/n`` (two chains at the same iteration),
  reported as ``n·q²``, theory ``1/(1 − β²)`` at zero field.

The theory is the n → ∞ limit, so a finite instance differs from it by its own fluctuation
(about ``1/n`` for the energy, ``1/√n`` relative for ``n·q²``); the Glauber chains are the
reference for this instance.

Run: ``python examples/sherrington_kirkpatrick.py [--n 200] [--beta 0.4] [--num-samples 1000]``.
"""

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from spins import arguments, glauber, goe, mean_and_mcse, sl_spins  # noqa: E402


def statistics(draws, a):
    """``(energy per spin (chains, draws), n·q² (pairs, draws))``."""
    n = a.shape[0]
    energy = -0.5 * np.einsum("cdi,ij,cdj->cd", draws, a, draws) / n
    pairs = draws.shape[0] // 2
    q = np.einsum("cdi,cdi->cd", draws[:pairs], draws[pairs:2 * pairs]) / n
    return energy, n * q**2


def main(argv=None):
    parser = arguments(__doc__.splitlines()[0], n=200, num_warmup=50, num_samples=1000, glauber_sweeps=20000,
                       glauber_chains=8)
    parser.add_argument("--beta", type=float, default=0.4)
    args = parser.parse_args(argv)
    a = goe(np.random.default_rng(0), args.n)
    draws, accept, wall = sl_spins(args.beta * a, args.num_warmup, args.num_samples, args.num_chains,
                                   num_steps=args.num_steps, progress_bar=args.progress_bar)
    reference, wall_glauber = glauber(args.beta * a, args.glauber_sweeps, args.glauber_chains, thin=10)
    print(f"SK, n = {args.n}, beta = {args.beta}: SL (TAP, two-point, {args.num_steps} Karras steps) "
          f"{args.num_chains} chains x ({args.num_warmup} + {args.num_samples}), acceptance {accept:.3f}, {wall:.0f} s; "
          f"Glauber {args.glauber_chains} chains x {args.glauber_sweeps} sweeps (every 10th kept), {wall_glauber:.0f} s")
    print("| statistic | SL | ESS | Glauber | (SL − Glauber) / SE | theory (n → ∞) |")
    print("|---|---|---|---|---|---|")
    theory = (-args.beta / 2, 1.0 / (1.0 - args.beta**2))
    for name, sl, ref, th in zip(("energy per spin H/n", "n·q²"), statistics(draws, a), statistics(reference, a), theory):
        m, se, ess = mean_and_mcse(sl)
        m_ref, se_ref, _ = mean_and_mcse(ref)
        z = (m - m_ref) / np.hypot(se, se_ref)
        print(f"| {name} | {m:.4f} ± {se:.4f} | {ess:.0f} | {m_ref:.4f} ± {se_ref:.4f} | {z:+.2f} | {th:.4f} |")


if __name__ == "__main__":
    main()
