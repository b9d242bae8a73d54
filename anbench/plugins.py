"""Plugin manager: loads built-in and installed plugins and builds the registries.

Loading rules (see docs/plugins.md):

* entry points of the group ``anbench`` are imported one at a time; a failure (import
  error, misspelled hook, a register hook that raises, a name already taken) becomes a
  :class:`LoadError` and one warning line on stderr, never a dead CLI;
  ``ANBENCH_STRICT_PLUGINS=1`` turns the first failure into an :class:`AnbenchError`;
* ``ANBENCH_LOAD_PLUGINS``: unset loads every installed plugin, ``""`` none, a comma list
  only those (entry-point or distribution names); built-ins always load;
* ``ANBENCH_DISABLE_PLUGINS``: a comma list of plugin names (built-in ones included) to skip.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import AnbenchError

ENTRY_POINT_GROUP = "anbench"
BUILTIN_MODULES = {
    "cpu": "anbench.builtin.cpu",
    "synthetic": "anbench.builtin.synthetic",
}
KINDS = ("devices", "datasets", "trainers", "compilers", "trackers")


@dataclass
class LoadError:
    plugin: str
    distribution: str | None
    error: str

    def line(self) -> str:
        where = f" ({self.distribution})" if self.distribution else ""
        return f"anbench: warning: plugin '{self.plugin}'{where} failed to load: {self.error}"


@dataclass
class PluginInfo:
    name: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error: str | None = None


class Registry:
    """Registered objects by kind and name, with the plugin that registered each."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {k: {} for k in KINDS}
        self.owner: dict[tuple[str, str], str] = {}
        self.targets: dict[str, Any] = {}

    def add(self, kind: str, obj: Any, plugin: str) -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"registered {kind[:-1]} has no string 'name'")
        if name in self.items[kind]:
            raise ValueError(f"{kind[:-1]} '{name}' is already registered by plugin '{self.owner[(kind, name)]}'")
        if kind == "compilers":
            for target in getattr(obj, "targets", ()):
                if target in self.targets:
                    raise ValueError(f"target '{target}' is already claimed by compiler '{self.targets[target].name}'")
        self.items[kind][name] = obj
        self.owner[(kind, name)] = plugin
        if kind == "compilers":
            for target in obj.targets:
                self.targets[target] = obj

    def remove_plugin(self, plugin: str) -> None:
        for (kind, name), owner in list(self.owner.items()):
            if owner == plugin:
                obj = self.items[kind].pop(name)
                del self.owner[(kind, name)]
                for target in [t for t, compiler in self.targets.items() if compiler is obj]:
                    del self.targets[target]

    def get(self, kind: str, name: str) -> Any:
        try:
            return self.items[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.items[kind])) or "none"
            raise AnbenchError(f"unknown {kind[:-1]} '{name}'; known {kind}: {known}") from None

    def device(self, name: str):
        return self.get("devices", name)

    def dataset(self, name: str):
        return self.get("datasets", name)

    def trainer(self, name: str):
        return self.get("trainers", name)

    def tracker(self, name: str):
        return self.get("trackers", name)

    def compiler_for_target(self, target: str):
        try:
            return self.targets[target]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none"
            raise AnbenchError(f"unknown target '{target}'; known targets: {known}") from None


class PluginHost:
    """A plugin manager with its registries, load errors and per-plugin listing."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.infos: dict[str, PluginInfo] = {}
        self.errors: list[LoadError] = []
        self.strict = os.environ.get("ANBENCH_STRICT_PLUGINS", "") not in ("", "0")

    # -- loading --

    def fail(self, info: PluginInfo, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        text = " ".join(str(text).split())  # one line, whatever the exception printed
        info.error = text
        load_error = LoadError(info.name, info.distribution, text)
        self.errors.append(load_error)
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)
        self.registry.remove_plugin(info.name)
        if self.strict:
            raise AnbenchError(load_error.line().replace("warning: ", "", 1) + " (ANBENCH_STRICT_PLUGINS is set)")

    def add(self, info: PluginInfo, module_loader: Callable[[], Any]) -> None:
        self.infos[info.name] = info
        try:
            module = module_loader()
            self.pm.register(module, name=info.name)
            info.module = getattr(module, "__name__", None)
            self._check_pending(info)
        except Exception as exc:  # a third-party import can raise anything
            self.fail(info, exc)
            return
        info.hooks = sorted(impl_name for impl_name in _hook_names(self.pm, info.name))

    def _check_pending(self, info: PluginInfo) -> None:
        # a misspelled hook (e.g. register_device) has no spec: pluggy reports it here
        self.pm.check_pending()

    def load_builtins(self, blocked: set[str]) -> None:
        version = _anbench_version()
        for name, module in BUILTIN_MODULES.items():
            if name in blocked:
                continue
            self.add(PluginInfo(name, builtin=True, distribution="anbench", version=version),
                     lambda module=module: importlib.import_module(module))

    def load_entry_points(self, allowed: set[str] | None, blocked: set[str]) -> None:
        seen: set[tuple[str, str | None]] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else None
            # the same distribution can be found twice on sys.path; load it once
            if (ep.name, dist) in seen or ep.name in blocked or (dist and dist in blocked):
                continue
            if allowed is not None and ep.name not in allowed and (dist not in allowed):
                continue
            seen.add((ep.name, dist))
            info = PluginInfo(ep.name, builtin=False, distribution=dist, version=ep.dist.version if ep.dist else None)
            if ep.name in self.infos:
                owner = self.infos[ep.name]
                # listed under its own key, so that failing it leaves the first owner alone
                info.name = f"{ep.name}@{dist}"
                self.infos[info.name] = info
                self.fail(info, f"plugin name '{ep.name}' is already taken by {owner.distribution or 'another plugin'}")
                continue
            self.add(info, ep.load)

    # -- registries --

    def collect(self, only: set[str] | None = None) -> None:
        """Call the register_* hooks plugin by plugin, so a raising plugin fails alone.

        ``only`` limits the calls to those plugin names (for a plugin added after the
        first collection, e.g. by a test); what other plugins registered stays.
        """
        for kind in KINDS:
            caller = getattr(self.pm.hook, f"register_{kind}")
            for impl in caller.get_hookimpls():
                info = self.infos[impl.plugin_name]
                if info.error or (only is not None and impl.plugin_name not in only):
                    continue

                def register(obj, _kind=kind, _plugin=impl.plugin_name, _info=info):
                    self.registry.add(_kind, obj, _plugin)
                    _info.provides[_kind].append(obj.name)

                try:
                    impl.function(**{"register": register} if impl.argnames else {})
                except Exception as exc:
                    self.fail(info, exc)

    def add_commands(self, cli) -> None:
        """Let plugins add click commands; one that replaces a built-in command fails."""
        builtin = dict(cli.commands)
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self.infos[impl.plugin_name]
            if info.error:
                continue
            before = dict(cli.commands)
            try:
                impl.function(**{"cli": cli} if impl.argnames else {})
                shadowed = sorted(n for n, cmd in builtin.items() if cli.commands.get(n) is not cmd)
                if shadowed:
                    raise ValueError(f"command '{shadowed[0]}' shadows a built-in command")
            except Exception as exc:
                cli.commands.clear()
                cli.commands.update(before)
                self.fail(info, exc)

    def warn(self, stream=None) -> None:
        for error in self.errors:
            print(error.line(), file=stream or sys.stderr)

    def availability(self) -> dict[str, dict[str, str | None]]:
        """For each kind, name -> None (usable) or the reason it is not."""
        out: dict[str, dict[str, str | None]] = {}
        for kind in KINDS:
            out[kind] = {}
            for name, obj in sorted(self.registry.items[kind].items()):
                try:
                    out[kind][name] = obj.availability()
                except Exception as exc:  # availability is a question; a crash answers it
                    out[kind][name] = f"availability check failed: {type(exc).__name__}: {exc}"
        return out

    def versions(self) -> dict[str, str | None]:
        """Plugin name -> distribution version, for provenance."""
        return {name: info.version for name, info in sorted(self.infos.items()) if not info.error}


def _hook_names(pm: pluggy.PluginManager, plugin_name: str) -> list[str]:
    plugin = pm.get_plugin(plugin_name)
    return [caller.name for caller in pm.get_hookcallers(plugin) or []]


def _anbench_version() -> str:
    from . import __version__

    return __version__


def _env_set(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def make_plugin_host(load_entrypoints: bool = True) -> PluginHost:
    """A fresh, fully loaded host. Tests build their own; the CLI uses :func:`get_host`."""
    host = PluginHost()
    blocked = _env_set("ANBENCH_DISABLE_PLUGINS") or set()
    host.load_builtins(blocked)
    if load_entrypoints:
        host.load_entry_points(_env_set("ANBENCH_LOAD_PLUGINS"), blocked)
    host.collect()
    return host


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    global _HOST
    if _HOST is None:
        _HOST = make_plugin_host()
    return _HOST


def reset_host() -> None:
    global _HOST
    _HOST = None
