"""How to train `Learned`'s residual network (issue 18): regression targets, architecture, covariance, grid.

One target of `learned_denoisers.py` (4,000 exact draws, the mixture base fitted with the target's
density), one network (``--arch mlp`` or ``coordinatewise``, ``--jaccov`` for the Jacobian as
covariance), trained on the kernel's own grid (``--grid karras`` or ``ou``, 25 steps) with Adam and a
cosine-decayed rate for ``--iters`` steps, once per regression target (``--variants``):

- ``dsm``: ``x`` itself (denoising score matching);
- ``stf``: the posterior mean of ``x`` given ``y_t`` under all 4,000 draws (stable target field);
- ``stein``: ``x + λ(t)·Cov_base(x | y)·(y − ∇U(x) − t·x)``, the control variate of the target's score,
  ``λ = t·σ̄²/(1 + t·σ̄²)``;
- ``stfstein``: the ``stf`` average of the ``stein`` targets.

Prints, for the base and each trained network (last weights and an exponential moving average,
decay 0.999): the training loss at start and end, the variance of the exact log weights on 2,048
paths of 4,000 fresh target draws, and the exact kernel's acceptance (4 chains x 800 steps after 100).

Run: ``python benchmarks/learned_training_study.py --target wells --d 8 --arch coordinatewise --jaccov
--grid karras --iters 4000 --variants dsm,stf``. Its results are quoted in ``benchmarks/README.md``.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import equinox as eqx  # noqa: E402
import learned_denoisers as bench  # noqa: E402
import optax  # noqa: E402

from slppl.denoisers import Learned  # noqa: E402
from slppl.denoisers.learned import log_weight_variance  # noqa: E402
from slppl.denoisers.networks import _with_network  # noqa: E402
from slppl.time_grids import Karras, UniformOU  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=("banana", "funnel", "wells"), default="banana")
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--iters", type=int, default=4000)
    p.add_argument("--variants", default="dsm,stf,stein,stfstein")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--arch", choices=("mlp", "coordinatewise"), default="mlp")
    p.add_argument("--jaccov", action="store_true")
    p.add_argument("--grid", choices=("karras", "ou"), default="karras")
    p.add_argument("--breakdown", action="store_true",
                   help="per grid time: squared error of each denoiser against an oracle (50,000 exact draws)")
    a = p.parse_args()

    name, U, draw = {"banana": bench.banana, "funnel": bench.funnel, "wells": bench.double_wells}[a.target](a.d)
    x = jnp.asarray(draw(np.random.default_rng(0), 4000))
    x_eval = jnp.asarray(draw(np.random.default_rng(5), 4000))
    g = jax.vmap(jax.grad(U))(x)
    times = jnp.asarray((Karras() if a.grid == "karras" else UniformOU()).times(25))
    den0 = Learned.fit(jax.random.PRNGKey(1), x, potential_fn=U, num_iters=0, architecture=a.arch,
                       covariance="jacobian" if a.jaccov else "base")
    print(name, a, flush=True)
    n, d = x.shape
    mean_var = jnp.mean(den0.scale**2)

    def lwv(den):
        return float(jax.jit(lambda: log_weight_variance(jax.random.PRNGKey(7), den, x_eval, U, times,
                                                         num_paths=2048)[0])())

    def accept(den):
        acc, _ = bench.run_kernel(den, U, x[0], times, 4, 900, jax.random.PRNGKey(2))
        return float(np.asarray(acc)[:, 100:].mean())

    def make_loss(kind, static):
        def loss_fn(params, key):
            k1, k2, k3 = jax.random.split(key, 3)
            idx = jax.random.randint(k1, (256,), 0, n)
            t = times[jax.random.randint(k2, (256,), 0, times.shape[0])]
            xb = x[idx]
            y = t[:, None] * xb + jnp.sqrt(t)[:, None] * jax.random.normal(k3, (256, d))
            den = _with_network(den0, eqx.combine(params, static))

            def one(y_, t_, x_, i_):
                m, _, _ = den.estimate(None, y_, t_, ())
                _, cov_b, _, _ = den0.base.estimate_with_cov(None, y_, t_, ())
                lam = t_ * mean_var / (1.0 + t_ * mean_var)
                w = jax.nn.softmax(x @ y_ - 0.5 * t_ * jnp.sum(x * x, 1))
                target = {"dsm": lambda: x_,
                          "stf": lambda: w @ x,
                          "stein": lambda: x_ + lam * cov_b @ (y_ - g[i_] - t_ * x_),
                          "stfstein": lambda: w @ (x + lam * (y_[None, :] - g - t_ * x) @ cov_b.T)}[kind]()
                c_out2 = den0.scale**2 / (1.0 + t_ * den0.scale**2)
                return jnp.mean((m - jax.lax.stop_gradient(target)) ** 2 / c_out2)

            return jnp.mean(jax.vmap(one)(y, t, xb, idx))

        return loss_fn

    def train(kind):
        params, static = eqx.partition(den0.network, eqx.is_array)
        opt = optax.adam(optax.cosine_decay_schedule(a.lr, a.iters))
        loss_fn = make_loss(kind, static)

        def step(carry, k):
            p_, s_, ema = carry
            loss, grads = jax.value_and_grad(loss_fn)(p_, k)
            updates, s_ = opt.update(grads, s_, p_)
            p_ = optax.apply_updates(p_, updates)
            ema = jax.tree_util.tree_map(lambda e, q: 0.999 * e + 0.001 * q, ema, p_)
            return (p_, s_, ema), loss

        run = jax.jit(lambda p_, k: jax.lax.scan(step, (p_, opt.init(p_), p_), jax.random.split(k, a.iters)))
        (last, _, ema), losses = run(params, jax.random.PRNGKey(3))
        return eqx.combine(last, static), eqx.combine(ema, static), np.asarray(losses)

    if a.breakdown:
        ref = jnp.asarray(draw(np.random.default_rng(9), 50000))
        g_ref = jax.vmap(jax.grad(U))(ref)
        xt = jnp.asarray(draw(np.random.default_rng(11), 1024))

        def oracle(y, t):
            w = jax.nn.softmax(ref @ y - 0.5 * t * jnp.sum(ref * ref, 1))
            _, cov_b, _, _ = den0.base.estimate_with_cov(None, y, t, ())
            lam = t * mean_var / (1 + t * mean_var)
            return w @ (ref + lam * (y[None] - g_ref - t * ref) @ cov_b.T)

        dens = {"base": den0} | {kind: _with_network(den0, train(kind)[0]) for kind in a.variants.split(",")}
        print("t, dt, then per denoiser E|m - m_oracle|^2 (its share dt/2 of the path KL):", list(dens))
        for k in range(times.shape[0] - 1):
            t, dt = times[k], times[k + 1] - times[k]
            y = t * xt + jnp.sqrt(t) * jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(4), k), xt.shape)
            m_o = jax.lax.map(lambda yy: oracle(yy, t), y, batch_size=64)
            errs = [float(jnp.mean(jnp.sum((jax.vmap(lambda yy: den.estimate(None, yy, t, ())[0])(y) - m_o) ** 2, 1)))
                    for den in dens.values()]
            print(f"{float(t):9.4f} {float(dt):9.4f} | " + " ".join(f"{e:.2e} ({0.5 * float(dt) * e:.3f})" for e in errs))
        return
    print(f"base: log-weight variance {lwv(den0):.3f}, acceptance {accept(den0):.3f}", flush=True)
    for kind in a.variants.split(","):
        start = time.time()
        last, ema, losses = train(kind)
        took = time.time() - start
        for label, net in (("last", last), ("ema", ema)):
            den = _with_network(den0, net)
            print(f"{kind:9s} {label}: train {took:.0f} s, loss {losses[:200].mean():.4f} -> {losses[-200:].mean():.4f}, "
                  f"log-weight variance {lwv(den):.3f}, acceptance {accept(den):.3f}", flush=True)


if __name__ == "__main__":
    main()
