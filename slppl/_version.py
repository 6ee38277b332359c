"""The package version, in one place (saved files record it)."""

__version__ = "0.1.0"
