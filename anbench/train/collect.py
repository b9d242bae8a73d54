"""Rebuild training records from a tracker's runs (``anbench collect``).

A tracked run carries the work item in its config (architecture record, dataset,
settings, run identity, seeds) and the stored metrics in its summary, so the record it
rebuilds has the same key as the one ``anbench train`` stored: collecting twice, or into
a store that already holds the run, adds nothing.
"""

from __future__ import annotations

from typing import Any

from ..errors import AnbenchError
from ..searchspace import Architecture
from ..store import StageResult, Store
from .recipe import PROXIFIED, coerce


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    # JSON on the way through a tracker may turn 1.0 into 1: restore each knob's type, so
    # the canonical JSON (and the record key) is the one anbench train stored
    return {k: coerce(k, v, "tracked settings") if k in PROXIFIED else v for k, v in settings.items()}


def record_from_run(run: dict[str, Any], tracker: str) -> tuple[Architecture, StageResult]:
    config = run["config"]
    try:
        arch = Architecture.from_record(config["architecture"])
        result = StageResult(
            arch_id=arch.id, stage="train", target=config["dataset"], settings=_settings(config["settings"]),
            metrics=dict(run["record"]),
            provenance={"collected_from": tracker, "tracker_run_id": run.get("run_id"), "seeds": config.get("seeds", {})},
            source=tracker, run=config.get("run", ""),
        )
    except (KeyError, TypeError) as exc:
        raise AnbenchError(f"{tracker} run {run.get('run_id')}: not an anbench training run (missing {exc})") from None
    return arch, result


def collect_into(store: Store, runs: list[dict[str, Any]], tracker: str) -> tuple[int, int]:
    """Store every run's record; returns (added, already stored)."""
    added = already = 0
    for run in runs:
        arch, result = record_from_run(run, tracker)
        with store.transaction():
            store.add_architecture(arch, origin={"source": tracker})
            if store.add_result(result):
                added += 1
            else:
                already += 1
    return added, already
