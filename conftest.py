"""Doctest collection over ``slppl/``: the Pyro adapter's modules need torch (``slppl[pyro]``)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["slppl/pyro.py", "slppl/pyro_potential.py"]
