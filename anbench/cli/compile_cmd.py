"""``anbench compile``: quantize and compile architectures for a device target."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import AnbenchError
from ..measure.environment import provenance, utc_now
from ..plugin_types import CompileRequest
from ..workloop import StageOutput, WorkItem, raise_if_interrupted, run_items
from .common import app, format_option, host, print_json, resolve_work_archs, work_arch_options


@click.command("compile")
@click.option("--target", required=True, help="Compile target, e.g. zcu102 or vck190 (see `anbench plugins`).")
@work_arch_options
@click.option("--workdir", type=click.Path(file_okay=False), default="anbench-artifacts", show_default=True,
              help="Where compiled artifacts are written (one folder per architecture and target).")
@format_option("table", "json")
def compile_cmd(target, arch_specs, from_store, sample_count, sample_seed, sample_start, workdir, fmt):
    """Quantize and compile architectures for a device target; store the artifacts.

    The compiler is the plugin that claims the target; its toolchain must be usable
    here (`anbench doctor` says why not). An architecture compiled for the target with
    the same settings is not compiled again; several processes share the work.

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
    work = resolve_work_archs(arch_specs, from_store, sample_count, sample_seed, sample_start, "compile", target)

    def request_for(arch) -> CompileRequest:
        return CompileRequest(arch, target, Path(workdir) / arch.id / target)

    items = [WorkItem(w.arch, "compile", target, {"compiler": compiler.name, **request_for(w.arch).settings},
                      origin=w.origin) for w in work]

    def compile_one(item: WorkItem, ctx) -> StageOutput:
        started = utc_now()
        ctx.status("compiling")
        artifact = compiler.compile(request_for(item.arch))
        return StageOutput({"artifact": str(artifact.path), "fingerprint": artifact.fingerprint},
                           provenance(settings=item.settings, started_at=started, plugin_versions=plugins.versions()))

    summary = run_items(store, items, compile_one, label=f"compiling for {target}",
                        describe=(lambda item, out: f"{item.arch.id}  {target}  {out.metrics['artifact']}")
                        if fmt == "table" else None)
    if fmt == "json":
        print_json([{"id": item.arch.id, "target": target, "artifact": out.metrics["artifact"]}
                    for item, out in summary.done])
    else:
        click.echo(summary.line(f"compiled for {target}"))
    raise_if_interrupted(summary)
