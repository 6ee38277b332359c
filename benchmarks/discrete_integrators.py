"""Moves and denoisers for spins: acceptance of the exact kernel on pairwise models, side by side.

Targets on ``x ∈ {−1, 1}^n`` (n = 200), ``μ ∝ exp(½·xᵀJx)``: independent spins (J = 0, where the
tilted law is a product), Sherrington–Kirkpatrick at β = 0.3 and 0.45 (``J = β·A``, A GOE), and a
Z2-synchronisation posterior at λ = 1.5 (``J = λ·Y``, ``Y = (λ/n)·x*x*ᵀ + W``). Each row is one chain
of 200 exact SL steps on the Karras grid with 50 steps, ``final="product"``: the mean acceptance and
the spread (standard deviation) of the proposals' log weights, which is what the acceptance pays.

- moves: ``SecondOrder`` (a Gaussian step matching the tilted law's first two moments) and
  ``TwoPoint`` (the channel's own move under the product law of the denoiser's marginals);
- denoisers: ``MeanField`` (damped fixed point), TAP solved by the same damped iteration (the
  Onsager term at the current iterate; not in the library), and ``TAP`` (AMP: the Onsager term at
  the previous iterate, no damping).

Run: ``python benchmarks/discrete_integrators.py``; writes ``benchmarks/results/discrete_integrators.md``.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

from report import environment, write_result  # noqa: E402
from spins import goe  # noqa: E402

from slppl.denoisers import TAP, MeanField  # noqa: E402
from slppl.integrators import SecondOrder, TwoPoint  # noqa: E402
from slppl.kernel import build_kernel, init  # noqa: E402
from slppl.time_grids import Karras  # noqa: E402

N, NUM_STEPS, CHAIN = 200, 50, 200


class DampedTAP(TAP):
    """TAP's equations iterated with damping 1/2 and the Onsager term at the current iterate."""

    def _probs(self, rng_key, y, t, state):
        a, b = self._pair(y.dtype)
        grad = jax.grad(self.potential_fn)
        squared = jnp.asarray(self.couplings_sq, y.dtype)
        bias = (b - a) * y - 0.5 * t * (b**2 - a**2)

        def update(_, p):
            m = a + (b - a) * p
            onsager = 0.5 * (a + b - 2.0 * m) * (squared @ ((b - a) ** 2 * p * (1.0 - p)))
            return 0.5 * p + 0.5 * jax.nn.sigmoid(bias + (b - a) * (onsager - grad(m)))

        return jax.lax.fori_loop(0, self.num_iters, update, jnp.full_like(y, 0.5)), state


def targets():
    rng = np.random.default_rng(0)
    a = goe(rng, N)
    truth = rng.choice([-1.0, 1.0], N)
    y = 1.5 / N * np.outer(truth, truth) + goe(rng, N)
    np.fill_diagonal(y, 0.0)
    return {"independent spins": np.zeros((N, N)), "SK β = 0.3": 0.3 * a, "SK β = 0.45": 0.45 * a,
            "Z2 λ = 1.5": 1.5 * y}


def run(couplings, denoiser_cls, integrator):
    J = jnp.asarray(couplings)

    def potential(x):
        return -0.5 * x @ J @ x

    values = np.tile([-1.0, 1.0], (N, 1))
    if denoiser_cls is MeanField:
        den = MeanField(potential, values)
    else:
        den = denoiser_cls(potential, values, couplings=couplings)
    step = build_kernel(den, Karras().times(NUM_STEPS), integrator(values) if integrator is TwoPoint else integrator(),
                        final="product")

    def body(state, _):
        state = step(state, potential)
        return state, (state.accept_prob, state.proposal_log_weight)

    start = time.perf_counter()
    _, (accept, log_w) = jax.lax.scan(body, init(jnp.ones(N), potential, jax.random.PRNGKey(0), den), None, CHAIN)
    accept, log_w = np.asarray(jax.block_until_ready(accept))[1:], np.asarray(log_w)[1:]
    return accept.mean(), log_w[np.isfinite(log_w)].std(), time.perf_counter() - start


def main():
    lines = ["# Moves and denoisers for spins (`benchmarks/discrete_integrators.py`)", "",
             f"{environment()}. n = {N}, Karras grid with {NUM_STEPS} steps, one chain of {CHAIN} exact steps per row.",
             "", "| target | denoiser | move | acceptance | log-weight sd | s |", "|---|---|---|---|---|---|"]
    for name, couplings in targets().items():
        for den in (MeanField, DampedTAP, TAP):
            for integ in (SecondOrder, TwoPoint):
                acc, sd, wall = run(couplings, den, integ)
                label = "TAP (AMP)" if den is TAP else den.__name__
                lines.append(f"| {name} | {label} | {integ.__name__} | {acc:.3f} | {sd:.2f} | {wall:.0f} |")
                print(lines[-1], flush=True)
    write_result("discrete_integrators.md", lines)


if __name__ == "__main__":
    main()
