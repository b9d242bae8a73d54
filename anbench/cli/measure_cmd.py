"""``anbench measure``: inference throughput and latency on a device."""

from __future__ import annotations

import json

import click

from ..errors import AnbenchError
from ..measure.environment import provenance, utc_now
from ..measure.host_noise import affinity, parse_cores, pinned
from ..measure.timing import TimingPolicy, engine_policy
from ..measure.watched import HOST_REASONS, measure_watched
from ..plugin_types import MeasureRequest
from ..workloop import StageOutput, WorkItem, next_run, raise_if_interrupted, run_items
from .common import app, format_option, host, parse_key_values, print_json, resolve_work_archs, work_arch_options


@click.command("measure")
@click.option("--device", "device_name", required=True, help="Device runner name (see `anbench plugins`).")
@work_arch_options
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Batch size for throughput [the device's default, else 32].")
@click.option("--resolution", type=click.IntRange(min=32, max=4096), default=224, show_default=True,
              help="Input height and width.")
@click.option("--activation", type=click.Choice(["relu", "silu"]), default="relu", show_default=True,
              help="Model variant (relu + hard-sigmoid is the dataset's).")
@click.option("--precision", default=None, help="Numeric precision, if the device offers several [the device's "
              "default, else fp32].")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="Host threads (0 = runner default, stored as the count used; more than the CPUs is clamped).")
@click.option("--mode", type=click.Choice(["inference", "train"]), default="inference", show_default=True,
              help="inference: forward passes; train: forward, backward and optimizer step (training images/s).")
@click.option("--schedule", type=click.Choice(["adaptive", "fixed"]), default=None,
              help="adaptive: warm-up until the rate is steady, measure until the CI target; fixed: the original "
                   "--warmup/--repeats/--batches procedure. Default: adaptive, fixed when one of those is given.")
@click.option("--ci-target", type=click.FloatRange(min=0.01, max=50), default=1.0, show_default=True,
              help="Stop when the 95% CI half-width is within this percentage of the mean.")
@click.option("--budget-s", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Time budget per metric (adaptive); a CI target not reached by then makes it INVALID. "
                   "Self-timed boards: their budget per mode.")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Fixed schedule: warm-up batches [the device's original procedure, else 2].")
@click.option("--repeats", type=click.IntRange(min=1), default=None, help="Fixed schedule: timed windows [device's, else 5].")
@click.option("--batches", type=click.IntRange(min=1), default=None,
              help="Fixed schedule: batches per window [device's, else 3].")
@click.option("--wait-quiet", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help="Wait up to this long for a quiet host before measuring, and measure again within that time "
                   "if the host was busy; 0 = do not wait (a busy host makes the measurement INVALID).")
@click.option("--isolate", metavar="CORES", default=None,
              help="Pin this process to these cores (e.g. 2-3 or 0,2); threads default to their count.")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Channels-last memory format (device option; default: the device's, recorded).")
@click.option("--no-latency", is_flag=True, help="Skip the batch-1 latency measurement.")
@click.option("--force", is_flag=True, help="Measure again even if a result with the same settings is stored; "
              "the new measurement is kept as another run beside the earlier ones.")
@click.option("--host", "board_host", metavar="USER@BOARD[:PORT]", default=None,
              help="Measure on a board reached over SSH (devices that support it, e.g. zcu102).")
@click.option("--identity", type=click.Path(dir_okay=False), default=None,
              help="SSH private key file for --host (host keys are always checked).")
@click.option("--on-board", is_flag=True, help="anbench runs on the board itself (no SSH).")
@click.option("--option", "device_options", multiple=True, metavar="KEY=VALUE",
              help="A device option, e.g. cuda_graphs=true, compile=true, input=loader (cuda) or threads=auto, "
                   "budget_s=20 (DPU boards); see the device's docs. Repeatable.")
@format_option("table", "json")
def measure_cmd(device_name, arch_specs, from_store, sample_count, sample_seed, sample_start, batch_size, resolution,
                activation, precision, threads, mode, schedule, ci_target, budget_s, warmup, repeats, batches,
                wait_quiet, isolate, channels_last, no_latency, force, board_host, identity, on_board, device_options,
                fmt):
    """Measure inference throughput (images/s) and batch-1 latency (ms) on a device.

    The engine warms up until the rate is steady, then measures until the 95% confidence
    interval of the mean is within --ci-target or --budget-s runs out, watching the host:
    each measurement is stored VALID or INVALID with its reasons (CI not reached, host
    busy, clock throttling, recompilation), never silently. Every measurement is stored
    with its settings and provenance; one already stored with the same settings is
    skipped (--force adds another run), so an interrupted run continues where it stopped
    when started again. Several `anbench measure` processes on one store share the work.

    \b
    Examples:
      anbench measure --device cpu --arch efficientnet-b0 --batch-size 16
      anbench measure --device cpu -n 5 --seed 0
      anbench measure --device cpu --arch smallest --mode train --batch-size 8
      anbench measure --device cpu --arch smallest --schedule fixed --warmup 2 --repeats 5 --batches 3
      anbench sample -n 3 --seed 1 --format jsonl | anbench measure --device cpu --arch -
      anbench measure --device cpu --from-store --isolate 1 --wait-quiet 120
      anbench measure --device zcu102 --host root@zcu102-board --identity ~/.ssh/board --arch zcu102-a
    """
    plugins = host()
    runner = plugins.registry.device(device_name)
    device_options = _device_options(board_host, identity, on_board, device_options)
    if hasattr(runner, "measure_on_device"):
        device_options = _self_timed_options(click.get_current_context(), device_name, device_options)
    options: dict = {}  # options of the request (resolved and validated by the runner)
    if device_options and hasattr(runner, "with_options"):
        runner = runner.with_options(device_options)  # options that configure the runner (boards)
    elif device_options:
        board = sorted({"host", "identity", "on_board"} & set(device_options))
        if board or not hasattr(runner, "resolve_request"):
            which = ", ".join(f"--{key.replace('_', '-')}" for key in board) or "--option"
            raise AnbenchError(f"device '{device_name}' takes no device options ({which})")
        options = {key: _typed(value) for key, value in device_options.items()}
    self_timed = hasattr(runner, "measure_on_device")
    reason = runner.availability()
    if reason:
        raise AnbenchError(f"device '{device_name}' is not available here: {reason}")
    if not arch_specs and not from_store and not sample_count:
        raise AnbenchError("nothing to measure: give --arch ARCH (repeatable), -n N [--seed S] or --from-store")
    cores = _parse_isolate(isolate)
    if channels_last is not None:
        options["channels_last"] = channels_last
    batch_size = batch_size or getattr(runner, "default_batch_size", None) or 32
    precision = precision or getattr(runner, "default_precision", None) or "fp32"
    preset = getattr(runner, "fixed_schedule", None)
    preset = preset(batch_size) if preset is not None else {}
    policy, timing = _policy(schedule, ci_target, budget_s, warmup, repeats, batches, preset)
    store = app().store()
    work = resolve_work_archs(arch_specs, from_store, sample_count, sample_seed, sample_start, "measure", device_name)

    with pinned(cores):
        threads = _clamp_threads(threads)
        resolve = getattr(runner, "resolve_request", None)

        def request_for(arch) -> MeasureRequest:
            artifact = _compiled_artifact(store, arch.id, device_name) if self_timed else None
            request = MeasureRequest(arch, batch_size, (3, resolution, resolution), activation, precision, threads,
                                     artifact=artifact, mode=mode, options=dict(options))
            return resolve(request) if resolve is not None else request

        # what defines the result; the identity file is a credential's path, not a setting
        option_settings = {k: v for k, v in device_options.items() if k != "identity"} if not options else {}
        # the request whose settings key the result is the one measured (a compile stored in
        # between would otherwise change a self-timed device's artifact under the same key)
        requests: dict[str, MeasureRequest] = {}
        items = []
        for entry in work:
            request = requests[entry.arch.id] = request_for(entry.arch)
            if self_timed:  # the device's own procedure and batch: the engine's timing does not apply
                settings = {k: v for k, v in request.settings().items() if k != "batch_size"}
            else:
                settings = dict(request.settings(), timing=timing, latency=not no_latency)
            if option_settings:
                settings["device_options"] = option_settings
            if cores:
                settings["cores"] = cores
            run = next_run(store, entry.arch.id, "measure", device_name, settings) if force else ""
            items.append(WorkItem(entry.arch, "measure", device_name, settings, run, origin=entry.origin))

        def measure_one(item: WorkItem, ctx) -> StageOutput:
            request = requests[item.arch.id]
            started = utc_now()
            if self_timed:  # the device times itself (a remote board running the engine)
                ctx.status("measuring on the device")
                metrics, device_facts = runner.measure_on_device(request), runner.describe()
            else:
                result = measure_watched(runner, request, policy, latency=not no_latency, wait_quiet_s=wait_quiet,
                                         status=ctx.status)
                metrics, device_facts = result.metrics(), result.device
            return StageOutput(metrics, provenance(
                settings=item.settings, device=device_facts, seeds={"input": request.seed}, started_at=started,
                plugin_versions=plugins.versions()))

        summary = run_items(store, items, measure_one, label=f"measuring on {device_name}",
                            describe=_describe if fmt == "table" else None)
    if fmt == "json":
        rows = [dict(_row(item, "measured"), **_main_metrics(output.metrics)) for item, output in summary.done]
        rows += [_row(item, "stored already" if state == "stored" else "taken by another worker")
                 for item, state in summary.skipped]
        print_json(rows)
    elif not items:
        click.echo(f"nothing to measure: every stored architecture has a measurement on {device_name}")
    else:
        invalid = sum(output.metrics.get("verdict") == "INVALID" for _, output in summary.done)
        line = summary.line(f"measured on {device_name}")
        click.echo(line + (f" ({invalid} INVALID: see `anbench results`)" if invalid else ""))
    raise_if_interrupted(summary)


def _policy(schedule, ci_target_pct, budget_s, warmup, repeats, batches, preset):
    """(engine policy, the timing settings that enter the result key).

    ``preset``: the device's own fixed procedure (the original pipeline's), else 2/5/3.
    """
    fixed_given = any(v is not None for v in (warmup, repeats, batches))
    schedule = schedule or ("fixed" if fixed_given else "adaptive")
    ci_target = ci_target_pct / 100.0
    if schedule == "fixed":
        fixed = TimingPolicy(warmup_batches=preset.get("warmup_batches", 2) if warmup is None else warmup,
                             repeats=repeats or preset.get("repeats", 5),
                             batches_per_repeat=batches or preset.get("batches_per_repeat", 3))
        return fixed.to_engine(ci_target=ci_target), fixed.as_dict()
    if fixed_given:
        raise AnbenchError("--warmup, --repeats and --batches belong to --schedule fixed; "
                           "the adaptive schedule finds them itself")
    return engine_policy(ci_target=ci_target, budget_s=budget_s), {"schedule": "adaptive", "ci_target": ci_target}


def _parse_isolate(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        cores = parse_cores(text)
    except ValueError as exc:
        raise AnbenchError(f"--isolate: {exc}") from None
    allowed = affinity()
    outside = [c for c in cores if c not in allowed]
    if outside:
        raise AnbenchError(f"--isolate: cores {outside} are not available to this process (it may use {allowed})")
    return cores


# the statistical engine's options: a device that times itself never reads them
SELF_TIMED_REFUSED = ("batch_size", "schedule", "ci_target", "warmup", "repeats", "batches", "no_latency",
                      "wait_quiet")


def _self_timed_options(ctx: click.Context, device_name: str, device_options: dict) -> dict:
    """Device options for a self-timed device (a DPU board), with ``--budget-s`` forwarded.

    The board runs its own procedure at the DPU's batch, so the engine's options would be
    stored in the settings yet ignored: they are refused. ``--budget-s`` becomes the device
    option ``budget_s``, written as ``--option budget_s=S`` would be so both key alike.
    """
    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)

    refused = [f"--{name.replace('_', '-')}" for name in SELF_TIMED_REFUSED if given(name)]
    if refused:
        raise AnbenchError(f"device '{device_name}' times itself on the device: {', '.join(refused)} "
                           "would be ignored; its time budget is --budget-s")
    if given("budget_s"):
        if "budget_s" in device_options:
            raise AnbenchError("give the budget once: --budget-s or --option budget_s=S, not both")
        device_options = {**device_options, "budget_s": f"{ctx.params['budget_s']:g}"}
    return device_options


def _device_options(board_host, identity, on_board, pairs) -> dict:
    options: dict = parse_key_values(pairs, "--option")
    for key, value in (("host", board_host), ("identity", identity), ("on_board", on_board or None)):
        if value is not None:
            options[key] = value
    return options


def _typed(value):
    """``"true"`` -> True, ``"3"`` -> 3, anything that is not JSON stays a string."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value


def _compiled_artifact(store, arch_id: str, target: str):
    """The newest stored compile result of ``arch_id`` for ``target`` that is not INVALID."""
    from pathlib import Path

    usable = [r for r in store.results(stage="compile", arch_id=arch_id, target=target)
              if r.metrics.get("artifact") and r.metrics.get("verdict", "VALID") == "VALID"]
    return Path(usable[-1].metrics["artifact"]) if usable else None  # insertion order: the last is the newest


def _clamp_threads(threads: int) -> int:
    cpus = len(affinity())
    if threads > cpus:
        click.echo(f"warning: --threads {threads} is more than the {cpus} CPUs this process may use; using {cpus}",
                   err=True)
        return cpus
    return threads


def _row(item: WorkItem, status: str) -> dict:
    row = {"id": item.arch.id, "architecture": item.arch.compact, "status": status}
    if item.run:
        row["run"] = item.run
    return row


def _main_metrics(metrics: dict) -> dict:
    keys = ("throughput_ips_mean", "throughput_ips_std", "throughput_ips_ci_low", "throughput_ips_ci_high",
            "train_throughput_ips_mean", "train_throughput_ips_std", "latency_ms_mean", "latency_ms_std",
            "latency_ms_ci_low", "latency_ms_ci_high", "verdict", "reasons")
    return {key: metrics[key] for key in keys if key in metrics}


def _short_reasons(reasons: list[str], shown: int = 2) -> str:
    """The first reasons, each once, without the metric prefix, causes (a busy or throttled
    host) before their symptoms (a CI not reached); the full list is stored."""
    unique = list(dict.fromkeys(r.split(": ", 1)[-1] for r in reasons))
    unique.sort(key=lambda r: not r.startswith(HOST_REASONS))
    text = "; ".join(unique[:shown])
    return text + (f"; +{len(unique) - shown} more" if len(unique) > shown else "")


def _describe(item: WorkItem, output: StageOutput) -> str:
    def fmt(mean, std, unit):
        if mean is None:
            return "-"
        return f"{mean:.2f} ± {std:.2f} {unit}" if std is not None else f"{mean:.2f} {unit}"

    m = output.metrics
    if "train_throughput_ips_mean" in m:
        speed = f"train {fmt(m.get('train_throughput_ips_mean'), m.get('train_throughput_ips_std'), 'img/s')}"
    else:
        speed = (f"throughput {fmt(m.get('throughput_ips_mean'), m.get('throughput_ips_std'), 'img/s')}"
                 f"  latency {fmt(m.get('latency_ms_mean'), m.get('latency_ms_std'), 'ms')}")
    verdict = m.get("verdict")
    why = f" ({_short_reasons(m.get('reasons') or [])})" if verdict == "INVALID" else ""
    return f"{item.label}  {item.arch.compact}  {speed}" + (f"  {verdict}{why}" if verdict else "")
