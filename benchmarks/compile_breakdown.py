"""Which programs XLA compiles in one cold `MCMC.run`, and for how long: NUTS against `SL(model)`.

Each (case, sampler) runs in a fresh process: one chain, 1000 warmup + 1000 draws,
`progress_bar=False` (NumPyro's `fori_collect` loop, as in parallel runs), float64. JAX's own log
of every compilation (`jax_log_compiles`) is summed by program name: the sampling loop, the
adaptive kernel's jitted init, and the many small programs NumPyro and the model run eagerly while
setting up. Writes `benchmarks/results/compile_breakdown.md`.

Run: ``python benchmarks/compile_breakdown.py``.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("eight schools (non-centred)", "German credit")

CHILD = r"""
import json, logging, re, sys, time
sys.path.insert(0, {here!r})
import jax
jax.config.update("jax_enable_x64", True)
from numpyro.infer import MCMC, NUTS
from slppl import SL
import cases
seconds = []

class Log(logging.Handler):
    def emit(self, record):
        m = re.search(r"Finished XLA compilation of (.*?) in ([\d.e-]+) sec", record.getMessage())
        if m:
            seconds.append((m.group(1), float(m.group(2))))

logger = logging.getLogger("jax")
logger.addHandler(Log())
logger.setLevel(logging.DEBUG)
logger.propagate = False
jax.config.update("jax_log_compiles", True)
case = next(c for c in cases.reference_cases() if c.name.startswith({case!r}))
kernel = SL(case.model) if {sampler!r} == "SL(model)" else NUTS(case.model)
mcmc = MCMC(kernel, num_warmup=1000, num_samples=1000, progress_bar=False)
start = time.perf_counter()
mcmc.run(jax.random.PRNGKey(0), *case.args)
wall = time.perf_counter() - start
loop = sum(s for name, s in seconds if "fori_collect" in name)
init = sum(s for name, s in seconds if "init_one" in name)
print(json.dumps(dict(wall=wall, total=sum(s for _, s in seconds), loop=loop, init=init, count=len(seconds))))
"""


def main():
    sys.path.insert(0, HERE)
    import numpyro

    from report import environment, write_result

    lines = ["# XLA compilations in one cold run (`compile_breakdown.py`)", "",
             f"{environment(numpyro=numpyro.__version__)}; one chain, 1000 + 1000, progress_bar=False, "
             "one process per row; seconds from JAX's compile log.", "",
             "| case | sampler | wall s | XLA compile s | sampling loop | SL's init | other programs (count) |",
             "|---|---|---|---|---|---|---|"]
    for case in CASES:
        for sampler in ("NUTS", "SL(model)"):
            code = CHILD.format(here=HERE, case=case, sampler=sampler)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            other = r["total"] - r["loop"] - r["init"]
            lines.append(f"| {case} | {sampler} | {r['wall']:.1f} | {r['total']:.1f} | {r['loop']:.1f} | "
                         f"{r['init']:.1f} | {other:.1f} ({r['count'] - 1 - (r['init'] > 0)}) |")
            print(lines[-1], flush=True)
    write_result("compile_breakdown.md", lines)


if __name__ == "__main__":
    main()
