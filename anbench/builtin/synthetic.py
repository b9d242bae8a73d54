"""The synthetic dataset: generated, deterministic, image-shaped and learnable.

Ten classes at 32x32 pixels. Class ``c`` is an oriented colour grating (its own colour pair,
orientation and frequency) plus a bright blob in one of the image's quadrants; each
sample shifts the pattern randomly, scales its contrast and adds strong Gaussian noise.
Chance is 10 % top-1; a small AccelNet gets far above it within two short epochs on a CPU.
Sample ``i`` of a split is the same on every machine and in every process (it depends only
on the split and ``i``), so DDP ranks, resumed runs and repeated runs see the same data.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from ..hookspecs import hookimpl
from ..plugin_types import DataRequest

NUM_CLASSES = 10
RESOLUTION = 32
SPLIT_SIZES = {"train": 2048, "val": 512}
_SPLIT_SEEDS = {"train": 1001, "val": 2002}
NOISE_STD = 0.8
# ImageNet's per-channel statistics, so the generated images look normalised like the real ones
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _prototypes(resolution: int):
    """``NUM_CLASSES x 3 x (2r) x (2r)`` class patterns, twice the size so shifts stay inside."""
    import torch

    size = 2 * resolution
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    protos = []
    for c in range(NUM_CLASSES):
        angle = math.pi * c / NUM_CLASSES
        period = resolution / (2 + c % 3)
        phase = (xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period
        grating = torch.sin(phase)
        colour_a = torch.tensor([(c * 0.37) % 1.0, (c * 0.61 + 0.3) % 1.0, (c * 0.83 + 0.6) % 1.0])
        colour_b = 1.0 - colour_a
        image = (colour_a[:, None, None] * (grating + 1) / 2) + (colour_b[:, None, None] * (1 - grating) / 2)
        qy, qx = (c // 2) % 2, (c + c // 4) % 2
        cy, cx = size * (0.3 + 0.4 * qy), size * (0.3 + 0.4 * qx)
        blob = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * (size / 10) ** 2))
        protos.append(image + blob)
    mean = torch.tensor(_MEAN)[:, None, None]
    std = torch.tensor(_STD)[:, None, None]
    return (torch.stack(protos) - mean) / std


class _Split:
    """A materialised split at the base resolution (a few MB, built once per process)."""

    def __init__(self, split: str) -> None:
        import torch

        n = SPLIT_SIZES[split]
        generator = torch.Generator().manual_seed(_SPLIT_SEEDS[split])
        self.labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
        shifts = torch.randint(0, RESOLUTION, (n, 2), generator=generator)
        contrast = 0.6 + 0.8 * torch.rand(n, generator=generator)
        protos = _prototypes(RESOLUTION)
        images = torch.empty((n, 3, RESOLUTION, RESOLUTION))
        for i in range(n):
            y, x = int(shifts[i, 0]), int(shifts[i, 1])
            images[i] = protos[self.labels[i], :, y:y + RESOLUTION, x:x + RESOLUTION] * contrast[i]
        images += NOISE_STD * torch.randn(images.shape, generator=generator)
        self.images = images


_SPLITS: dict[str, _Split] = {}


def _split(name: str) -> _Split:
    if name not in _SPLITS:
        _SPLITS[name] = _Split(name)
    return _SPLITS[name]


class _Loader:
    """One pass over this rank's share, as (images, labels) batches; ``len()`` = batches."""

    def __init__(self, request: DataRequest, indices) -> None:
        self.request = request
        self.indices = indices

    def __len__(self) -> int:
        n, b = len(self.indices), self.request.batch_size
        return n // b if self.request.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch.nn.functional as F

        data = _split(self.request.split)
        resolution = self.request.resolution or RESOLUTION
        b = self.request.batch_size
        for start in range(0, len(self) * b, b):
            chosen = self.indices[start:start + b]
            images = data.images[chosen]
            if resolution != RESOLUTION:
                images = F.interpolate(images, size=(resolution, resolution), mode="bilinear",
                                       align_corners=False, antialias=resolution < RESOLUTION)
            yield images, data.labels[chosen]


class SyntheticDataset:
    name = "synthetic"
    summary = (f"generated {NUM_CLASSES}-class coloured gratings with noise, 3x{RESOLUTION}x{RESOLUTION}, "
               f"{SPLIT_SIZES['train']} train / {SPLIT_SIZES['val']} val; learnable, needs no download")
    task = "image2d"
    num_classes = NUM_CLASSES
    input_shape = (3, RESOLUTION, RESOLUTION)
    metric_name = "top1"
    streamable_metrics = True
    # the proxified recipe scaled to this data: two short epochs at 32 px on a CPU
    recipe_defaults = {
        "epochs": 2, "batch_size": 64, "val_batch_size": 128, "lr": 0.8, "lr_batch_size": 512,
        "lr_peak_epoch": 0.5, "min_res": 32, "max_res": 32, "start_ramp": 1, "end_ramp": 2,
        "val_resolution": 32, "crop_ratio": 1.0, "label_smoothing": 0.1,
    }

    def availability(self) -> str | None:
        return None

    def loader(self, request: DataRequest) -> _Loader:
        from ..errors import AnbenchError
        from ..train.sharding import rank_indices

        if request.split not in SPLIT_SIZES:
            raise AnbenchError(f"dataset synthetic has splits {', '.join(SPLIT_SIZES)}, not '{request.split}'")
        return _Loader(request, rank_indices(request, SPLIT_SIZES[request.split]))

    def evaluate(self, outputs, targets, groups=None) -> dict[str, float]:
        from ..train.metrics import topk_accuracy

        return topk_accuracy(outputs, targets)

    def batch(self, batch_size: int, seed: int = 0, resolution: int = RESOLUTION):
        """One (images, labels) batch of random val samples; the same seed gives the same tensors."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randint(0, SPLIT_SIZES["val"], (batch_size,), generator=generator)
        images, labels = next(iter(_Loader(DataRequest("val", batch_size, resolution), chosen)))
        return images, labels


@hookimpl
def register_datasets(register):
    register(SyntheticDataset())
