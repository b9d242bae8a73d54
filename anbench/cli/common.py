"""What every command shares: the app context, output formats, architecture resolution."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import click

from ..errors import AnbenchError

DEFAULT_STORE = "anbench.db"


@dataclass
class AppContext:
    """Lives in ``ctx.obj``. The store opens on first use, so ``--help`` never touches it."""

    store_path: Path
    _store: Any = field(default=None, repr=False)

    def store(self, probe: bool = True):
        """The store, opened on first use; ``probe=False`` opens a damaged one too (store check)."""
        if self._store is None:
            from ..store import Store

            self._store = Store.open(self.store_path, probe=probe)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def app(ctx: click.Context | None = None) -> AppContext:
    ctx = ctx or click.get_current_context()
    return ctx.find_object(AppContext)


def host():
    from ..plugins import get_host

    return get_host()


def format_option(*choices: str, default: str = "table"):
    return click.option("--format", "fmt", type=click.Choice(choices), default=default, show_default=True,
                        help="Output format: a human table or machine-readable JSON.")


def print_table(rows: Iterable[Iterable[Any]], headers: list[str]) -> None:
    from tabulate import tabulate

    click.echo(tabulate(list(rows), headers=headers, tablefmt="simple", disable_numparse=True))


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


def print_jsonl(objs: Iterable[Any]) -> None:
    for obj in objs:
        click.echo(json.dumps(obj, separators=(", ", ": ")))


def load_json_text(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnbenchError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def parse_key_values(pairs: Iterable[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed pair is an AnbenchError."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AnbenchError(f"{option} {pair!r} must be KEY=VALUE")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def resolve_arch_specs(specs: Iterable[str], store_loader=None) -> list:
    """Turn ARCH arguments into architectures.

    Each spec is, in this order of tries: ``-`` (JSON lines on stdin, one 28-key object
    per line), a named architecture, a JSON object text, a path to a JSON file (one
    object, or JSON lines), or a stored architecture id (a unique prefix suffices).
    """
    from ..searchspace import NAMED, Architecture

    archs = []
    for spec in specs:
        if spec == "-":
            archs.extend(_parse_json_lines(sys.stdin.read(), "stdin"))
        elif spec in NAMED:
            archs.append(NAMED[spec])
        elif spec.lstrip().startswith("{"):
            archs.append(Architecture.from_record(load_json_text(spec, "ARCH")))
        elif Path(spec).is_file():
            try:
                text = Path(spec).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise AnbenchError(f"cannot read architecture file {spec}: {exc}") from None
            archs.extend(_parse_json_lines(text, spec))
        elif store_loader is not None and _looks_like_id(spec):
            archs.append(store_loader().architecture_by_prefix(spec))
        else:
            raise AnbenchError(
                f"ARCH '{spec}' is not a JSON object, a file, a stored id or a named architecture "
                f"(names: {', '.join(sorted(NAMED))})"
            )
    return archs


def _looks_like_id(spec: str) -> bool:
    return 4 <= len(spec) <= 16 and all(c in "0123456789abcdef" for c in spec)


def _parse_json_lines(text: str, where: str) -> list:
    from ..searchspace import Architecture

    stripped = text.strip()
    if not stripped:
        raise AnbenchError(f"{where}: no architecture given (expected one JSON object per line)")
    if stripped.startswith("{") and "\n" in stripped:
        # a pretty-printed single object is valid too
        try:
            return [Architecture.from_record(_unwrap(json.loads(stripped)))]
        except json.JSONDecodeError:
            pass
    archs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        record = load_json_text(line, f"{where} line {number}")
        try:
            archs.append(Architecture.from_record(_unwrap(record)))
        except AnbenchError as exc:
            raise AnbenchError(f"{where} line {number}: {exc}") from None
    return archs


def _unwrap(record: Any) -> Any:
    # accept the outputs of `anbench sample --format jsonl` and whole ANB result files
    if isinstance(record, dict) and "architecture" in record:
        return record["architecture"]
    return record


def work_arch_options(func):
    """The ways a multi-architecture command takes its architectures (measure, train, ...)."""
    options = [
        click.option("--arch", "arch_specs", multiple=True, metavar="ARCH",
                     help="Architecture(s): JSON object, file, stored id, name or - (JSON lines on stdin). Repeatable."),
        click.option("--from-store", is_flag=True, help="Every stored architecture with no result of this stage on this target."),
        click.option("-n", "sample_count", type=click.IntRange(min=1), default=None,
                     help="Sample this many architectures (the sampler of `anbench sample`)."),
        click.option("--seed", "sample_seed", type=int, default=0, show_default=True, help="Sampler seed for -n."),
        click.option("--start", "sample_start", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Index of the first sampled architecture in the seed's stream (for shards)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass
class WorkArch:
    """An architecture to work on and the origin to store it with if it is new."""

    arch: Any
    origin: dict


def resolve_work_archs(arch_specs, from_store: bool, sample_count: int | None, sample_seed: int, sample_start: int,
                       stage: str, target: str) -> list[WorkArch]:
    """Given (in order: --arch, -n sampled, --from-store missing ones), without repeats.

    Raises AnbenchError when no way of giving architectures was used.
    """
    from ..searchspace import SAMPLER_VERSION, sample

    if not arch_specs and not from_store and not sample_count:
        raise AnbenchError("no architectures given: use --arch ARCH (repeatable), -n N [--seed S] or --from-store")
    store_loader = lambda: app().store()  # noqa: E731 - opened only when a spec needs it
    out: list[WorkArch] = []
    seen: set[str] = set()

    def add(arch, origin):
        if arch.id not in seen:
            seen.add(arch.id)
            out.append(WorkArch(arch, origin))

    for arch in resolve_arch_specs(arch_specs, store_loader=store_loader) if arch_specs else []:
        add(arch, {"source": stage})
    if sample_count:
        for i, arch in enumerate(sample(sample_count, sample_seed, start=sample_start)):
            add(arch, {"source": "sample", "seed": sample_seed, "index": sample_start + i,
                       "sampler_version": SAMPLER_VERSION})
    if from_store:
        for arch in app().store().missing(stage, target):
            add(arch, {"source": stage})
    return out


def usable_tracker(plugins, name: str, needed_for: str):
    """The registered tracker ``name`` when it can run here; AnbenchError (one line) otherwise."""
    if name not in plugins.registry.items["trackers"]:
        known = ", ".join(sorted(plugins.registry.items["trackers"])) or "none"
        hint = f"pip install -e plugins/{name}_tracker" if name == "wandb" else f"registered trackers: {known}"
        raise AnbenchError(f"{needed_for} needs the {name} tracker plugin ({hint})")
    tracker = plugins.registry.tracker(name)
    reason = tracker.availability()
    if reason:
        raise AnbenchError(f"tracker '{name}' is not available here: {reason}")
    return tracker
