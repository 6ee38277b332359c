"""JAX's persistent compilation cache, switched on in one line.

``SL(model)`` compiles several programs (the walkers' exploration, the fits, the composite step);
on a small model that is most of what a first run waits for. JAX can keep compiled programs on
disk and reuse them in later processes, and within one process wherever a program is traced
again (NumPyro's ``MCMC.run`` with ``progress_bar=False`` builds its sampling loop anew on every
call). :func:`enable_compilation_cache` switches that on with thresholds that keep every
program; ``benchmarks/compilation_cache.py`` measures what it saves. JAX never caches a program
with host callbacks, so with the cache on ``SL(model)`` compiles its loop without the two
warnings it otherwise gives while running (walkers that never moved, global moves switched off
at the end of warmup); ``slppl.diagnostics.check_sl(mcmc)`` reports both after the run.
"""

import os

import jax

__all__ = ["enable_compilation_cache"]

DEFAULT_DIR = os.path.join("~", ".cache", "slppl", "jax")


def enable_compilation_cache(path=None):
    """Keep JAX's compiled programs in ``path`` (default ``~/.cache/slppl/jax``) and reuse them.

    Call it once, before the first run; it applies to every JAX program of the process, slppl's
    and NumPyro's. Returns the directory. ``SL(model)`` then leaves its two in-loop warnings to
    :func:`slppl.diagnostics.check_sl` (see the module's note): call it after each run. An entry is reused only for the same program on the
    same JAX version and device, so a stale cache is never wrong, only unused; delete the folder
    to free its space.

    Examples:
        >>> import jax, tempfile
        >>> from slppl import enable_compilation_cache
        >>> before = jax.config.jax_compilation_cache_dir
        >>> folder = enable_compilation_cache(tempfile.mkdtemp())
        >>> jax.config.jax_compilation_cache_dir == folder
        True
        >>> jax.config.update("jax_compilation_cache_dir", before)  # off again (before anything compiled)
    """
    path = os.path.abspath(os.path.expanduser(DEFAULT_DIR if path is None else path))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    # JAX's defaults skip programs that compiled in under a second; SL's many mid-sized ones add up.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
