"""``anbench compile``: quantize and compile architectures for a device target."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import AnbenchError
from ..measure.environment import provenance, utc_now
from ..plugin_types import CompileRequest
from ..workloop import StageOutput, WorkItem, raise_if_interrupted, run_items
from .common import app, format_option, host, parse_key_values, print_json, resolve_work_archs, work_arch_options


@click.command("compile")
@click.option("--target", required=True, help="Compile target, e.g. zcu102 or vck190 (see `anbench plugins`).")
@work_arch_options
@click.option("--workdir", type=click.Path(file_okay=False), default="anbench-artifacts", show_default=True,
              help="Where compiled artifacts are written (one folder per architecture and target).")
@click.option("--arch-json", type=click.Path(dir_okay=False), default=None,
              help="DPU arch.json to compile for instead of the target's stock one (Vitis AI).")
@click.option("--setting", "setting_pairs", multiple=True, metavar="KEY=VALUE",
              help="A compiler setting, e.g. weights=ckpt.pth or calib_images=150 (see the compiler's docs). Repeatable.")
@format_option("table", "json")
def compile_cmd(target, arch_specs, from_store, sample_count, sample_seed, sample_start, workdir, arch_json,
                setting_pairs, fmt):
    """Quantize and compile architectures for a device target; store the artifacts.

    The compiler is the plugin that claims the target; its toolchain must be usable
    here (`anbench doctor` says why not). An architecture compiled for the target with
    the same settings is not compiled again; several processes share the work.

    \b
    Examples:
      anbench compile --target zcu102 --arch zcu102-a
      anbench compile --target vck190 --arch efficientnet-b0 --setting weights=f_model.pth
    """
    plugins = host()
    compiler = plugins.registry.compiler_for_target(target)
    reason = compiler.availability()
    if reason:
        raise AnbenchError(f"compiler '{compiler.name}' for target '{target}' is not available here: {reason}")
    store = app().store()
    work = resolve_work_archs(arch_specs, from_store, sample_count, sample_seed, sample_start, "compile", target)
    settings = parse_key_values(setting_pairs, "--setting")
    if arch_json:
        settings["arch_json"] = str(Path(arch_json).resolve())
    refusal = getattr(compiler, "refusal", None)
    for w in work if refusal else ():
        reason = refusal(w.arch, target)
        if reason:
            raise AnbenchError(f"cannot compile for {target}: {reason}")

    def request_for(arch) -> CompileRequest:
        return CompileRequest(arch, target, Path(workdir) / arch.id / target, settings)

    items = [WorkItem(w.arch, "compile", target, {"compiler": compiler.name, **request_for(w.arch).settings},
                      origin=w.origin) for w in work]

    def compile_one(item: WorkItem, ctx) -> StageOutput:
        started = utc_now()
        ctx.status("compiling")
        artifact = compiler.compile(request_for(item.arch))
        return StageOutput({"artifact": str(artifact.path), "fingerprint": artifact.fingerprint, **artifact.metrics},
                           provenance(settings=item.settings, started_at=started, plugin_versions=plugins.versions()))

    summary = run_items(store, items, compile_one, label=f"compiling for {target}",
                        describe=_describe if fmt == "table" else None)
    if fmt == "json":
        print_json([{"id": item.arch.id, "target": target, "artifact": out.metrics["artifact"],
                     "verdict": out.metrics.get("verdict", "VALID")}
                    for item, out in summary.done])
    else:
        click.echo(summary.line(f"compiled for {target}"))
    raise_if_interrupted(summary)


def _describe(item: WorkItem, out: StageOutput) -> str:
    verdict = out.metrics.get("verdict", "VALID")
    tail = "" if verdict == "VALID" else f"  {verdict}: {out.metrics.get('reason', '')}"
    return f"{item.arch.id}  {item.target}  {out.metrics['artifact']}{tail}"
