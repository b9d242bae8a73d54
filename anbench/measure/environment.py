"""Host facts and versions recorded with every result (provenance)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import sys
from typing import Any


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def host_description() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "logical_cpus": os.cpu_count(),
    }


def provenance(*, settings: dict[str, Any], device: dict[str, Any] | None = None, seeds: dict[str, Any] | None = None,
               started_at: str | None = None, plugin_versions: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block of one stored result. Never put credentials in ``settings``."""
    from .. import __version__
    from ..searchspace import SAMPLER_VERSION

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch_version = None
    return {
        "anbench_version": __version__,
        "plugin_versions": plugin_versions or {},
        "sampler_version": SAMPLER_VERSION,
        "torch_version": torch_version,
        "seeds": seeds or {},
        "settings": settings,
        "host": host_description(),
        "device": device or {},
        "started_at": started_at,
        "finished_at": utc_now(),
    }
