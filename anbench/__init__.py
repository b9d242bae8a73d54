"""anbench: a plugin-based harness for collecting hardware-aware NAS benchmark datasets."""

from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
