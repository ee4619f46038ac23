"""The version of imbstat: one literal, read by the package, the JSON head and pyproject.toml."""

__version__ = "0.1.0"
