"""Helpers for tests of plugins and of the plugin host."""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)


def register_test_plugin(host_or_pm: Any, obj: Any, name: str | None = None) -> str:
    """Register ``obj`` (a module, class instance or namespace with ``@anbench.hookimpl``
    functions) and return the plugin name it was registered under.

    * On an :class:`anbench.plugins.PluginHost` the plugin goes through the host's own
      loading path (so a misspelled hook or a raising ``register_*`` hook becomes a load
      error exactly as for an installed plugin), then its ``register_*`` hooks are called
      and what it registers lands in ``host.registry``. Only the new plugin's hooks are
      called: the objects other plugins registered before stay as they are.
    * On a bare :class:`pluggy.PluginManager` it is ``pm.register(obj, name)`` followed
      by ``pm.check_pending()`` (which raises for hooks that have no spec).

    ``name`` defaults to ``"test-plugin-<n>"``. Load errors on a host follow the host's
    rules: recorded in ``host.errors`` (or raised under ``ANBENCH_STRICT_PLUGINS=1``).
    """
    name = name or f"test-plugin-{next(_counter)}"
    if hasattr(host_or_pm, "registry") and hasattr(host_or_pm, "pm"):
        _register_on_host(host_or_pm, obj, name)
    else:
        host_or_pm.register(obj, name=name)
        host_or_pm.check_pending()
    return name


def _register_on_host(host: Any, obj: Any, name: str) -> None:
    from ..plugins import PluginInfo

    info = PluginInfo(name, builtin=False, distribution=None, version=None)
    host.add(info, lambda: obj)
    if not info.error:
        host.collect(only={name})
