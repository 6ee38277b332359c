"""What JAX's persistent compilation cache saves (`slppl.enable_compilation_cache`).

Eight schools (non-centred, posteriordb) with `SL(model)` and with NUTS, 1 chain x (1000 + 1000),
each in a fresh process, three times: without the cache, with an empty cache (first process), and
with the cache the first process filled (second process). Within each process the same `MCMC`
object then runs once more on the same data with `progress_bar=False`, where NumPyro 0.22 builds
its sampling loop anew and compiles it again (`second run` columns). Seconds are wall time of
`MCMC.run` including compilation; `compile s` is JAX's own timer. Writes
`benchmarks/results/compilation_cache.md`.

Run: `python benchmarks/compilation_cache.py`.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {here!r})
import jax
jax.config.update("jax_enable_x64", True)
from numpyro.infer import MCMC, NUTS
import slppl
from slppl import SL
from slppl.compare import _CompileTimer
import cases
if {cache!r}:
    slppl.enable_compilation_cache({cache!r})
case = next(c for c in cases.reference_cases() if c.name.startswith("eight schools (non"))
kernel = SL(case.model) if {sampler!r} == "SL(model)" else NUTS(case.model)
mcmc = MCMC(kernel, num_warmup=1000, num_samples=1000, progress_bar=False)
out = {{}}
for run in ("first", "second"):
    with _CompileTimer() as timer:
        start = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(0), *case.args)
        jax.block_until_ready(mcmc.get_samples())
        out[run] = (time.perf_counter() - start, timer.seconds)
print(json.dumps(out))
"""


def measure(sampler, cache):
    code = CHILD.format(here=HERE, cache=cache, sampler=sampler)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    sys.path.insert(0, HERE)
    import numpyro
    from report import environment, write_result

    lines = ["# JAX's persistent compilation cache (`benchmarks/compilation_cache.py`)", "",
             environment(numpyro=numpyro.__version__) + ". Eight schools (non-centred), 1 chain x (1000 + 1000), float64, one process per row.", "",
             "| sampler | cache | run s | compile s | second run s | second run compile s |", "|---|---|---|---|---|---|"]
    for sampler in ("NUTS", "SL(model)"):
        with tempfile.TemporaryDirectory() as folder:
            for label, cache in (("none", None), ("empty (first process)", folder), ("filled (second process)", folder)):
                got = measure(sampler, cache)
                (run_s, compile_s), (again_s, again_compile_s) = got["first"], got["second"]
                lines.append(f"| {sampler} | {label} | {run_s:.1f} | {compile_s:.1f} | {again_s:.1f} | {again_compile_s:.1f} |")
                print(lines[-1], flush=True)
    lines += ["", "With the cache on, SL(model) compiles its loop without its two in-loop warnings (host callbacks, "
              "which JAX never writes to the persistent cache; `check_sl` reports both conditions after the run), so "
              "its whole sampler is reused. What a second process still spends is tracing and lowering, which JAX "
              "does not cache."]
    write_result("compilation_cache.md", lines)


if __name__ == "__main__":
    main()
