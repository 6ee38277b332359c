"""Doctest collection over ``slppl/``: the Pyro adapter's module needs torch (``slppl[pyro]``)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["slppl/pyro.py"]
