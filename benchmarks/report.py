"""What every benchmark's results file shares: the machine-and-versions line, and writing it."""

import os
import platform
import time

import jax

HERE = os.path.dirname(os.path.abspath(__file__))


def environment(**versions):
    """``"x86_64, 2 CPU cores, Python …, jax …, <name> <version>…, float64, <date>"``."""
    names = "".join(f"{k} {v}, " for k, v in versions.items())
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, jax {jax.__version__}, "
            f"{names}float64, {time.strftime('%Y-%m-%d')}")


def write_result(name, lines):
    """Writes ``lines`` to ``benchmarks/results/<name>``, prints them, returns the path."""
    path = os.path.join(HERE, "results", name)
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))
    return path
