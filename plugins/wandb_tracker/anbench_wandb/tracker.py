"""The wandb tracker and the readers that bring runs back (offline directories, online projects)."""

from __future__ import annotations

import importlib.util
import json
import netrc
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from anbench.errors import AnbenchError
from anbench.plugin_types import TrackerRun

RECORD_KEY = "anbench_record"
_DEFAULT_HOST = "https://api.wandb.ai"


def _has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", _DEFAULT_HOST)).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(timeout_s: float = 3.0) -> bool:
    url = urlparse(os.environ.get("WANDB_BASE_URL", _DEFAULT_HOST))
    try:
        with socket.create_connection((url.hostname or "api.wandb.ai", url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


class WandbTracker:
    name = "wandb"
    summary = "Weights & Biases: one run per model (config, epochs, final metrics, weights artifact); offline without a key"

    def __init__(self) -> None:
        self._mode: str | None = None

    def availability(self) -> str | None:
        if importlib.util.find_spec("wandb") is None:
            return "wandb is not installed (pip install wandb==0.31.0)"
        return None

    def mode(self) -> str:
        """``online`` / ``offline`` / ``disabled``; decided once per process and said once."""
        if self._mode is None:
            chosen = os.environ.get("WANDB_MODE", "").strip().lower()
            if chosen in ("offline", "disabled", "dryrun"):
                self._mode = "offline" if chosen == "dryrun" else chosen
            elif not _has_key():
                self._mode = "offline"
                print("wandb: no API key (WANDB_API_KEY or netrc): runs are written offline; "
                      "upload them later with `wandb sync`", file=sys.stderr)
            elif chosen != "online" and not _reachable():
                self._mode = "offline"
                print("wandb: the server cannot be reached: runs are written offline; "
                      "upload them later with `wandb sync`", file=sys.stderr)
            else:
                self._mode = "online"
        return self._mode

    def start(self, run: TrackerRun) -> Any:
        import wandb

        directory = Path(os.environ.get("WANDB_DIR") or run.directory)
        directory.mkdir(parents=True, exist_ok=True)
        return wandb.init(
            project=run.options.get("project") or "anbench", entity=run.options.get("entity") or None,
            group=run.group, name=run.name, config=run.config, dir=str(directory), mode=self.mode(),
            reinit="create_new", settings=wandb.Settings(x_disable_stats=True, console="off", save_code=False),
        )

    def log_epoch(self, handle: Any, row: dict[str, Any]) -> None:
        handle.log({k: v for k, v in row.items() if v is not None}, step=int(row["epoch"]))

    def finish(self, handle: Any, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        import wandb

        try:
            headline = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) or v is None}
            handle.summary.update(dict(headline, **{RECORD_KEY: metrics}))
            if checkpoint is not None and Path(checkpoint).is_file():
                artifact = wandb.Artifact(artifact_name(handle.config.get("arch_id"), handle.config.get("run")),
                                          type="model", metadata={"key": handle.config.get("key"),
                                                                  "verdict": metrics.get("verdict")})
                artifact.add_file(str(checkpoint), name="checkpoint.pt")
                handle.log_artifact(artifact)
        finally:
            handle.finish()

    # -- reading runs back --------------------------------------------------------

    def collect_dir(self, directory: Path) -> list[dict[str, Any]]:
        """``{"run_id", "config", "record"}`` of every finished anbench run under ``directory``
        (offline ``offline-run-*`` folders, wandb's own layout), read with ``wandb leet inspect``."""
        directory = Path(directory)
        if not directory.is_dir():
            raise AnbenchError(f"{directory} is not a folder")
        run_dirs = sorted({p.parent for p in directory.rglob("run-*.wandb")})
        if not run_dirs:
            raise AnbenchError(f"no wandb run folders (run-*.wandb files) under {directory}")
        out = []
        for run_dir in run_dirs:
            data = _inspect(run_dir)
            record = (data.get("summary") or {}).get(RECORD_KEY)
            if isinstance(record, dict):
                out.append({"run_id": data.get("run_id"), "config": data.get("config") or {}, "record": record})
        return out

    def collect_project(self, path: str) -> list[dict[str, Any]]:
        """The same from an online project ``ENTITY/PROJECT`` through the wandb API."""
        import wandb

        try:
            runs = wandb.Api().runs(path)
            out = []
            for run in runs:
                record = run.summary.get(RECORD_KEY)
                if isinstance(record, dict):
                    out.append({"run_id": run.id, "config": dict(run.config), "record": dict(record)})
            return out
        except wandb.errors.Error as exc:  # CommError, and UsageError when no API key is set
            raise AnbenchError(f"cannot read wandb project {path}: {' '.join(str(exc).split())}") from None


def artifact_name(arch_id: Any, run: Any) -> str:
    """``model-<arch>-<run>`` with every character wandb refuses in artifact names (``=`` of
    ``seed=3``, ``/``, spaces) replaced by ``-``: wandb rejects such a name when logging."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"model-{arch_id}-{run or 'run'}")


def _inspect(run_dir: Path) -> dict[str, Any]:
    exe = shutil.which("wandb", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        raise AnbenchError("the wandb command is not on PATH (pip install wandb==0.31.0)")
    done = subprocess.run([exe, "leet", "inspect", "--summary", "--json", str(run_dir)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AnbenchError(f"cannot read wandb run {run_dir}: {' '.join((done.stderr or done.stdout).split())[:200]}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AnbenchError(f"cannot read wandb run {run_dir}: `wandb leet inspect` gave no JSON") from None
