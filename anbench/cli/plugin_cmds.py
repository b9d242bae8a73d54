"""``anbench plugins`` and ``anbench doctor``."""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict

import click

from .common import format_option, host, print_json, print_table


def plugin_listing() -> list[dict]:
    """Every plugin, built-in and installed, with what it provides and whether it is usable."""
    plugins = host()
    availability = plugins.availability()
    listing = []
    for info in sorted(plugins.infos.values(), key=lambda i: (not i.builtin, i.name)):
        entry = asdict(info)
        entry["provides"]["targets"] = sorted(
            t for c in info.provides["compilers"] for t in plugins.registry.items["compilers"][c].targets
        )
        entry["availability"] = {
            kind: {name: availability[kind][name] for name in names}
            for kind, names in info.provides.items() if kind in availability and names
        }
        # a target is as usable as the compiler that claims it
        claimed = {t: availability["compilers"][c] for c in info.provides["compilers"]
                   for t in plugins.registry.items["compilers"][c].targets}
        if claimed:
            entry["availability"]["targets"] = dict(sorted(claimed.items()))
        listing.append(entry)
    return listing


@click.command("plugins")
@format_option("table", "json")
def plugins_cmd(fmt):
    """List every plugin, built-in and installed, and what it provides.

    Shows the distribution and version, the hooks each plugin implements, its devices,
    datasets, trainers, compilers and targets, whether each is usable here (and why
    not), and plugins that failed to load.

    \b
    Examples:
      anbench plugins
      anbench plugins --format json
      ANBENCH_DISABLE_PLUGINS=fpga_dpu anbench plugins
    """
    listing = plugin_listing()
    if fmt == "json":
        print_json(listing)
        return
    rows = []
    for p in listing:
        provides = []
        for kind, names in p["provides"].items():
            for name in names:
                reason = p["availability"].get(kind, {}).get(name)
                provides.append(f"{kind[:-1]} {name}" + (f" (unavailable: {reason})" if reason else ""))
        rows.append([p["name"], "built-in" if p["builtin"] else (p["distribution"] or "?"), p["version"] or "",
                     ", ".join(p["hooks"]), "\n".join(provides) or ("-" if not p["error"] else f"FAILED: {p['error']}")])
    print_table(rows, ["plugin", "distribution", "version", "hooks", "provides"])


@click.command("doctor")
@format_option("table", "json")
def doctor_cmd(fmt):
    """Check this machine: versions, plugins, and which devices work (and why not).

    \b
    Example:
      anbench doctor
    """
    from .. import __version__

    plugins = host()
    versions = {"anbench": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for module in ("torch", "numpy", "pluggy", "click", "ffcv", "wandb", "torch_xla", "pytorch_nndct", "vart", "xir"):
        versions[module] = _module_version(module)
    report = {
        "versions": versions,
        "availability": plugins.availability(),
        "plugins": plugins.versions(),
        "plugin_errors": [e.line() for e in plugins.errors],
    }
    if fmt == "json":
        print_json(report)
        return
    print_table(([k, v or "not installed"] for k, v in versions.items()), ["component", "version"])
    click.echo()
    rows = [[kind[:-1], name, "yes" if reason is None else f"no: {reason}"]
            for kind, items in report["availability"].items() for name, reason in items.items()]
    print_table(rows, ["kind", "name", "usable here"])
    for line in report["plugin_errors"]:
        click.echo(line)


def _module_version(module: str) -> str | None:
    # metadata first: importing torch_xla or vart just to read a version is slow or unsafe
    from importlib import metadata
    from importlib.util import find_spec

    names = {"torch_xla": "torch-xla", "pytorch_nndct": "pytorch-nndct"}
    try:
        return metadata.version(names.get(module, module))
    except metadata.PackageNotFoundError:
        return "present (version unknown)" if find_spec(module) else None
