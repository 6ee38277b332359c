"""Where an adaptive ``SL(model)`` run spends its time on a small model: compilation against sampling.

Measures, on eight schools (non-centred) and one chain:

1. XLA compile time of the adaptive step, of each phase's own work alone (fit, global and
   partial-path moves, local NUTS; ``build_kernel(...).parts``), and of the compiled init;
2. run time of each phase once compiled (explore, fit, warmup composite, sampling);
3. two XLA behaviours the kernel works around (``slppl/_random.py``, ``denoisers/fit.py``):
   a float64 normal draw of shape ``(8, 128, 10)`` against the same numbers drawn flat, and a
   batched triangular solve against ``(d, n)`` draws against an explicit inverse, each with 1 and
   4 host devices (in subprocesses, since the device count is fixed when JAX starts).

Writes ``benchmarks/results/compile_costs.md``. Run: ``python benchmarks/compile_costs.py``.
"""

import os
import platform
import subprocess
import sys
import time
from functools import partial

HERE = os.path.dirname(os.path.abspath(__file__))

MICRO = r'''
import sys, time
import numpyro
numpyro.set_host_device_count(int(sys.argv[1]))
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)

def compile_s(f, *a):
    t = time.perf_counter(); jax.jit(f).lower(*a).compile(); return time.perf_counter() - t

def run_s(f, *a, reps=10):
    g = jax.jit(f); jax.block_until_ready(g(*a)); t = time.perf_counter()
    for _ in range(reps):
        out = g(*a)
    jax.block_until_ready(out); return (time.perf_counter() - t) / reps

key = jax.random.PRNGKey(0)
print("normal_3d", compile_s(lambda k: jax.random.normal(k, (8, 128, 10)), key))
print("normal_flat", compile_s(lambda k: jax.random.normal(k, (10240,)).reshape(8, 128, 10), key))
x = jax.random.normal(key, (2000, 10))
chol = jnp.linalg.cholesky(jnp.broadcast_to(2.0 * jnp.eye(10), (8, 10, 10)))
solve = lambda L, x: jax.vmap(lambda l: jax.scipy.linalg.solve_triangular(l, x.T, lower=True))(L)
inverse = lambda L, x: jnp.einsum("kij,nj->kni", jax.scipy.linalg.solve_triangular(L, jnp.broadcast_to(jnp.eye(10), L.shape), lower=True), x)
print("solve", run_s(solve, chol, x))
print("inverse", run_s(inverse, chol, x))
'''


def micro(devices):
    out = subprocess.run([sys.executable, "-c", MICRO, str(devices)], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


def adaptive():
    import jax

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, HERE)
    import cases

    from slppl import SL

    case = next(c for c in cases.reference_cases() if c.name.startswith("eight schools (non"))
    from slppl import adaptation

    kernel = SL(case.model)
    z = kernel._setup_model(jax.random.PRNGKey(0), case.args, {}, None)
    built = []
    build_kernel = adaptation.build_kernel
    adaptation.build_kernel = lambda *a, **k: built.append(build_kernel(*a, **k)) or built[-1]
    try:
        init_fn, sample = kernel._build_adaptive(1000, False)
    finally:
        adaptation.build_kernel = build_kernel
    parts = built[0].parts
    potential = kernel._get_potential_fn(case.args, {})
    tempered = kernel._get_tempered_fn(case.args, {})
    rows = []

    def compile_s(name, f, *a):
        t = time.perf_counter()
        jax.jit(f).lower(*a).compile()
        rows.append((f"compile: {name}", time.perf_counter() - t))

    compile_s("init (walker starts, walkers' NUTS set-up)", lambda z, k: init_fn(z, k, case.args, {}), z, jax.random.PRNGKey(0))
    state = init_fn(z, jax.random.PRNGKey(0), case.args, {})
    compile_s("one adaptive step (all phases)", lambda s: sample(s, case.args, {}), state)
    # Each phase's own work alone (the step holds them all, behind one lax.switch).
    compile_s("  the fit (EM, reweighting), alone", lambda s: parts["fit"](s, potential), state)
    compile_s("  the global and partial-path moves, alone", lambda s: parts["global_move"](s, potential), state)
    compile_s("  the local NUTS moves, alone", lambda s: parts["local"](s, 16, potential, tempered), state)

    @partial(jax.jit, static_argnums=1)
    def loop(s, n):
        return jax.lax.fori_loop(0, n, lambda i, s: sample(s, case.args, {}), s)

    for name, n in (("explore (250 steps, 16 walkers)", 250), ("fit", 1), ("composite, warmup (749 steps)", 749),
                    ("composite, sampling (2000 steps)", 2000)):
        jax.block_until_ready(loop(state, n))  # compile
        t = time.perf_counter()
        state = jax.block_until_ready(loop(state, n))
        rows.append((f"run: {name}", time.perf_counter() - t))
    return rows


def main():
    import jax
    import numpyro

    rows = adaptive()
    one, four = micro(1), micro(4)
    lines = [
        "# Compilation against sampling for `SL(model)` (`compile_costs.py`)",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, jax {jax.__version__}, "
        f"numpyro {numpyro.__version__}, float64. Eight schools (non-centred), one chain, defaults, num_warmup=1000.",
        "",
        "| what | seconds |",
        "|---|---|",
    ]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in rows]
    lines += [
        "",
        "XLA behaviours the kernel works around:",
        "",
        "| what | 1 host device | 4 host devices |",
        "|---|---|---|",
        f"| compile float64 `normal(key, (8, 128, 10))` | {one['normal_3d']:.2f} s | {four['normal_3d']:.2f} s |",
        f"| compile the same numbers drawn flat, reshaped | {one['normal_flat']:.2f} s | {four['normal_flat']:.2f} s |",
        f"| run a batched triangular solve, 8 × (10 × 10) against (10 × 2000) | {1e3 * one['solve']:.2f} ms | {1e3 * four['solve']:.2f} ms |",
        f"| run an explicit inverse and a product instead | {1e3 * one['inverse']:.2f} ms | {1e3 * four['inverse']:.2f} ms |",
    ]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "compile_costs.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
