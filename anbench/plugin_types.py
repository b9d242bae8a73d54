"""The objects plugins register, and the requests/results that flow through them.

Protocols state what the core calls; the dataclasses are what it passes and gets back.
Units are in field names (``_s``, ``_ms``, ``_ips``, ``_m``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .searchspace import Architecture


@runtime_checkable
class Availability(Protocol):
    name: str
    summary: str

    def availability(self) -> str | None:
        """``None`` when usable here, else one line saying why not."""


# --- devices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasureRequest:
    """What to run: the network for ``arch`` on inputs of ``batch_size x input_shape``.

    ``artifact`` is set for devices that run compiled artifacts (DPUs); ``activation``
    and ``precision`` are the model variant; ``threads`` is a host-thread hint (0 = the
    runner's default). ``mode`` is ``"inference"`` (forward passes) or ``"train"`` (forward,
    backward and optimizer step per batch); a runner that cannot train raises
    :class:`~anbench.errors.AnbenchError`. ``options`` are device-specific switches
    (``channels_last``, ``cuda_graphs``, ``compile``, ``input``); a runner refuses options it
    does not know. Both enter ``settings()`` only when not default, so earlier results keep
    their keys.
    """

    arch: Architecture
    batch_size: int
    input_shape: tuple[int, ...] = (3, 224, 224)
    activation: str = "relu"
    precision: str = "fp32"
    threads: int = 0
    artifact: Path | None = None
    seed: int = 0
    mode: str = "inference"
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    def settings(self) -> dict[str, Any]:
        settings = {
            "batch_size": self.batch_size,
            "input_shape": list(self.input_shape),
            "activation": self.activation,
            "precision": self.precision,
            "threads": self.threads,
            "artifact": str(self.artifact) if self.artifact else None,
        }
        if self.mode != "inference":
            settings["mode"] = self.mode
        if self.options:
            settings["options"] = dict(sorted(self.options.items()))
        return settings


class DeviceRunner(Availability, Protocol):
    """A device that runs inference. See :func:`anbench.hookspecs.register_devices`.

    Optional members the core uses when present:

    * ``resolve_request(request) -> MeasureRequest``: fill in the defaults the runner would
      pick (thread count for ``threads=0``, option defaults), so stored settings say what ran.
    * ``timed_run(prepared, batches) -> float | (float, str)``: like ``run`` but returns the
      seconds the device took, from a device timer (CUDA events); a non-empty string
      discards the window with that reason (XLA compiled during it).
    * ``min_batch_size``: the smallest batch the device runs (latency is measured there).
    * ``default_batch_size`` / ``default_precision``: what ``anbench measure`` uses when the
      user gives none.
    * ``fixed_schedule(batch_size) -> {"warmup_batches", "repeats", "batches_per_repeat"}``:
      the original pipeline's fixed procedure on this device (``--schedule fixed``).
    * ``device_monitor(prepared)``: an engine ``HostMonitor`` for the device itself (GPU
      clocks, power, temperature before/after; reasons such as clock throttling).
    * ``describe()`` is called again after ``prepare`` so facts reflect what is in force.
    * ``with_options(options: dict) -> DeviceRunner``: a runner configured by the command's
      device options (``--host``, ``--identity``, ``--on-board``, ``--option K=V``);
      a device without it takes ``--option`` values as ``request.options`` when it has
      ``resolve_request``, and refuses them otherwise.
    * ``measure_on_device(request) -> dict``: the device times itself (a remote board) and
      returns flat metrics (``latency_ms_mean``, ``throughput_ips_mean``, ... and
      optionally ``verdict``) instead of the core timing ``run()``. Such devices get
      ``request.artifact`` from the newest stored compile result for the device's name.
    """

    def describe(self) -> dict[str, Any]:
        """JSON-able facts about the host and device for provenance (no secrets)."""

    def prepare(self, request: MeasureRequest) -> Any:
        """Build/load the model, move it to the device, make inputs; return an opaque handle.

        Raise :class:`anbench.errors.AnbenchError` for requests this device cannot serve.
        """

    def run(self, prepared: Any, batches: int) -> None:
        """Run ``batches`` forward passes of the prepared batch; return only when the device is done."""

    def release(self, prepared: Any) -> None:
        """Free what ``prepare`` allocated."""


# --- datasets / trainers / compilers ---------------------------------------------------


class Dataset(Availability, Protocol):
    task: str  # "image2d" | "seq1d"
    num_classes: int
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class TrainRequest:
    arch: Architecture
    dataset: str
    recipe: dict[str, Any]
    run_dir: Path
    seed: int


@dataclass(frozen=True)
class TrainResult:
    val_top1: float
    val_top5: float | None
    train_time_s: float
    metric_epochs: tuple[int, ...]
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer(Availability, Protocol):
    def train(self, request: TrainRequest) -> TrainResult: ...


@dataclass(frozen=True)
class CompileRequest:
    arch: Architecture
    target: str
    workdir: Path
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledArtifact:
    """``metrics``: extra flat metrics stored with the compile result; a ``verdict`` of
    ``"INVALID"`` (with a ``reason``) marks an artifact not to be measured."""

    path: Path
    target: str
    fingerprint: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


class Compiler(Availability, Protocol):
    """Optional: ``refusal(arch, target) -> str | None`` says why an architecture can never
    be compiled for a target; ``anbench compile`` asks it for every architecture before
    compiling any."""

    targets: tuple[str, ...]

    def compile(self, request: CompileRequest) -> CompiledArtifact: ...
