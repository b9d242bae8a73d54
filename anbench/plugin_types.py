"""The objects plugins register, and the requests/results that flow through them.

Protocols state what the core calls; the dataclasses are what it passes and gets back.
Units are in field names (``_s``, ``_ms``, ``_ips``, ``_m``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

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


@dataclass(frozen=True)
class DataRequest:
    """What a trainer asks a dataset for: one pass over one split, as batches.

    * ``split``: ``"train"`` or ``"val"`` (the split the reported metric comes from).
    * ``batch_size``: samples per batch *in this process* (per rank).
    * ``resolution``: square side in pixels for ``image2d`` datasets (train: the output of
      the random-resized-crop at this epoch's progressive-resizing size; val: the
      centre-crop output); ``None`` for ``seq1d`` datasets (their length is fixed).
    * ``epoch``: 0-based epoch; with ``seed`` it fixes the train order, so the same
      (seed, epoch) gives the same batches on every run (resume depends on it).
    * ``seed``: the per-model seed; two models of a sweep see different orders.
    * ``rank`` / ``world_size``: this process's share. Train: each rank gets a disjoint
      ``1/world_size`` of the epoch's permutation, equal-sized across ranks (DDP needs the
      same number of steps everywhere). Val: each rank gets a disjoint share and together
      they cover every sample exactly once (no padding, no duplicates), so sample-weighted
      reduction gives the exact whole-split metric.
    * ``data_dir``: the folder with the dataset's files (``None``: the dataset's default,
      usually an environment variable).
    * ``max_samples``: use only the first ``max_samples`` samples of the split (proxies, smoke
      runs, tests); ``None`` for all.
    * ``num_workers``: loader worker processes or threads (0: in this process).
    * ``drop_last``: drop a last partial batch (train: yes, val: never).
    * ``crop_ratio``: validation centre-crop ratio (224/256 in the proxified recipe).
    * ``device``: where the consumer runs (``"cpu"``, ``"cuda:0"``); a loader may put
      tensors there itself (FFCV's ``ToDevice``), else the trainer moves them.
    """

    split: str
    batch_size: int
    resolution: int | None = None
    epoch: int = 0
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    data_dir: Path | None = None
    max_samples: int | None = None
    num_workers: int = 0
    drop_last: bool = False
    crop_ratio: float = 224 / 256
    device: str = "cpu"


class Dataset(Availability, Protocol):
    """A dataset a trainer reads. See :func:`anbench.hookspecs.register_datasets`.

    Required: the attributes below, ``loader`` and ``evaluate``. Optional (the trainer
    uses ``getattr`` with the defaults given): ``multilabel`` (False), ``streamable_metrics``
    (False), ``recipe_defaults`` ({}), ``build_model`` (absent: the 2-D AccelNet with
    ``num_classes`` outputs) and ``check`` (absent: only ``availability()`` is asked).
    Datasets with a network of their own (the 1-D tasks) also offer ``costs(arch)`` (a
    :class:`anbench.costs.Costs` of that network on ``input_shape``; absent: the 2-D costs
    at 224), ``canonical_arch(arch)`` (the architecture the network really reads, stored
    with the result; absent: ``arch``) and ``eval_split`` (the split ``val`` reads, recorded
    with the metric; absent: ``"val"``).
    """

    task: str  # "image2d" | "seq1d"
    num_classes: int
    input_shape: tuple[int, ...]
    #: name of the headline metric in ``evaluate``'s result, higher is better
    #: (``"top1"`` for images, ``"macro_f1"`` for ECG, ``"mean_auroc"`` for DeepSEA)
    metric_name: str

    def loader(self, request: DataRequest) -> Iterable[tuple[Any, ...]]:
        """Batches of one pass over ``request.split`` for this rank.

        Each batch is ``(inputs, targets)`` or ``(inputs, targets, groups)``: ``inputs`` a float
        tensor ``N x input_shape`` (image2d: ``N x 3 x res x res``, normalised); ``targets``
        int64 class indices of shape ``N`` (``multilabel``: float ``N x num_classes``);
        ``groups`` (optional, val only) int64 ids of shape ``N`` telling which samples form one
        evaluation unit (e.g. windows of one ECG recording), handed to :meth:`evaluate`.
        May be iterated once; ``len()`` (number of batches), when offered, drives progress.
        Raise :class:`anbench.errors.AnbenchError` (one line) for missing or corrupt files.
        """

    def evaluate(self, outputs: Any, targets: Any, groups: Any = None) -> dict[str, float]:
        """Task metrics over samples: ``outputs`` are the network's raw outputs (logits,
        ``N x num_classes`` float tensor, on the CPU), ``targets``/``groups`` as yielded by
        :meth:`loader`. Returns a flat dict of floats that holds ``metric_name``;
        classification reports percentages (``top1``, ``top5``).

        With ``streamable_metrics = True`` every returned value is a mean over samples, so
        the trainer may call this per batch and combine the results weighted by batch size
        (exact for top-1/top-5, and cheap: no logits are kept). Otherwise the trainer
        gathers the whole split's outputs (from every rank) and calls it once.
        """


@dataclass(frozen=True)
class TrainRequest:
    """Train ``arch`` on ``dataset`` with the effective ``recipe`` (see :mod:`anbench.train.recipe`).

    ``run_dir`` is this model's own directory (keyed by the work item): the trainer keeps
    its epoch checkpoint there and, with ``resume``, continues from it. ``seed`` is the
    per-model seed (weights, data order, stochastic depth). ``data`` is the registered
    :class:`Dataset` object (``None``: look ``dataset`` up in the plugin registry);
    ``data_dir`` overrides the dataset's default location. ``on_epoch(row)`` is called after
    every epoch with that epoch's curve row (on every rank; callers log on rank 0 only);
    ``status(text)`` receives short live progress text. Under ``torch.distributed`` the
    trainer runs DDP over the initialised process group.
    """

    arch: Architecture
    dataset: str
    recipe: dict[str, Any]
    run_dir: Path
    seed: int
    data: Any = None
    data_dir: Path | None = None
    resume: bool = True
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    status: Callable[[str], None] | None = None


@dataclass(frozen=True)
class TrainResult:
    """Accuracies in percent; ``train_time_s`` positive wall seconds of the whole training
    (validation included, resumed parts summed); ``metric_epochs`` the 0-based epochs the
    final metrics come from. ``metrics`` holds every final metric by name (``val_top1``,
    ``val_top5``, ``val_loss``, ``val_<metric_name>``...); ``curves`` one row per finished
    epoch. ``verdict`` is ``"VALID"``, ``"DIVERGED"`` (non-finite loss) or ``"FAILED"``
    (e.g. out of memory; ``extra["error"]`` says what).
    """

    val_top1: float | None
    val_top5: float | None
    train_time_s: float
    metric_epochs: tuple[int, ...]
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    curves: tuple[dict[str, Any], ...] = ()
    verdict: str = "VALID"


class Trainer(Availability, Protocol):
    """Hardware that runs the training loop. See :func:`anbench.hookspecs.register_trainers`.

    Optional members the core uses when present: ``describe() -> dict`` (provenance facts,
    no secrets) and ``resolve(recipe) -> recipe`` (fills the ``auto`` knobs with what this
    trainer will really use, rejecting what it cannot do).
    """

    def train(self, request: TrainRequest) -> TrainResult: ...


# --- trackers --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackerRun:
    """One tracked training run (one model). ``config`` is JSON-able and secret-free: the
    effective recipe, the architecture record, seeds, dataset, trainer and the store key.
    ``options`` are the tracker's own command-line settings (e.g. ``project``, ``entity``);
    ``directory`` is where the tracker may write local files."""

    name: str
    group: str
    config: dict[str, Any]
    directory: Path
    options: dict[str, Any] = field(default_factory=dict)


class Tracker(Availability, Protocol):
    """An experiment tracker. See :func:`anbench.hookspecs.register_trackers`."""

    def start(self, run: TrackerRun) -> Any:
        """Open a run; return an opaque handle."""

    def log_epoch(self, handle: Any, row: dict[str, Any]) -> None:
        """Log one epoch's curve row (``epoch`` is its step)."""

    def finish(self, handle: Any, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        """Log the final metrics (and the weights file as an artifact when given); close."""


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
