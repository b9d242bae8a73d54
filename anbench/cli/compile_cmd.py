"""``anbench compile``: quantize and compile architectures for a device target."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import AnbenchError
from ..measure.environment import provenance, utc_now
from ..plugin_types import CompileRequest
from ..store import StageResult
from .common import app, format_option, host, print_json, resolve_arch_specs


@click.command("compile")
@click.option("--target", required=True, help="Compile target, e.g. zcu102 or vck190 (see `anbench plugins`).")
@click.option("--arch", "arch_specs", multiple=True, required=True, metavar="ARCH",
              help="Architecture(s): JSON object, file, stored id, name or - (JSON lines on stdin). Repeatable.")
@click.option("--workdir", type=click.Path(file_okay=False), default="anbench-artifacts", show_default=True,
              help="Where compiled artifacts are written (one folder per architecture and target).")
@format_option("table", "json")
def compile_cmd(target, arch_specs, workdir, fmt):
    """Quantize and compile architectures for a device target; store the artifacts.

    The compiler is the plugin that claims the target; its toolchain must be usable
    here (`anbench doctor` says why not).

    \b
    Example:
      anbench compile --target zcu102 --arch zcu102-a
    """
    plugins = host()
    compiler = plugins.registry.compiler_for_target(target)
    reason = compiler.availability()
    if reason:
        raise AnbenchError(f"compiler '{compiler.name}' for target '{target}' is not available here: {reason}")
    store = app().store()
    rows = []
    for arch in resolve_arch_specs(arch_specs, store_loader=lambda: store):
        started = utc_now()
        request = CompileRequest(arch, target, Path(workdir) / arch.id / target)
        artifact = compiler.compile(request)
        settings = {"compiler": compiler.name, **request.settings}
        store.add_architecture(arch, origin={"source": "compile"})
        store.add_result(StageResult(
            arch_id=arch.id, stage="compile", target=target, settings=settings,
            metrics={"artifact": str(artifact.path), "fingerprint": artifact.fingerprint},
            provenance=provenance(settings=settings, started_at=started, plugin_versions=plugins.versions()),
        ), replace=True)
        rows.append({"id": arch.id, "target": target, "artifact": str(artifact.path)})
        if fmt == "table":
            click.echo(f"{arch.id}  {target}  {artifact.path}")
    if fmt == "json":
        print_json(rows)
