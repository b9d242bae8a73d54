"""ImageNet loaders: FFCV (spec 4.5) and, without ffcv, a Pillow ImageFolder fallback.

Files in the data folder: ``train*.ffcv`` / ``val*.ffcv`` (or ``.beton``) written by
``anbench data write-ffcv``; or ImageFolder trees ``train/<class>/*.JPEG`` and
``val/<class>/*.JPEG`` (class index = position of the folder name in sorted order).

Ordering is decided here, not by FFCV's distributed mode (which pads the val split with
repeats): each rank gets explicit indices. Train: a permutation seeded by (seed, epoch),
cut into equal per-rank shares; val: every ``world_size``-th sample from ``rank``, so the
ranks together see every sample exactly once.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Any, Iterator

from anbench.errors import AnbenchError
from anbench.plugin_types import DataRequest

MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}
_SAID: set[str] = set()


def say_once(text: str) -> None:
    if text not in _SAID:
        _SAID.add(text)
        print(text, file=sys.stderr)


def ffcv_file(folder: Path, split: str) -> Path | None:
    for pattern in (f"{split}*.ffcv", f"{split}*.beton"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def image_folder(folder: Path, split: str) -> Path | None:
    root = folder / split
    return root if root.is_dir() and any(p.is_dir() for p in root.iterdir()) else None


def indices_for(request: DataRequest, n: int) -> list[int]:
    from anbench.train.sharding import rank_indices

    return rank_indices(request, n).tolist()


class _Batches:
    """Wraps a loader of uint8 images: float, normalised, on the request's device."""

    def __init__(self, inner, length: int) -> None:
        self.inner = inner
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch

        mean = std = None
        for images, labels in self.inner:
            if mean is None:
                mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
                std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
            yield (images.float() - mean) / std, labels.long().view(-1)


def _batches(n: int, request: DataRequest) -> int:
    return n // request.batch_size if request.drop_last else math.ceil(n / request.batch_size)


# --- FFCV ---------------------------------------------------------------------------


def ffcv_samples(path: Path) -> int:
    """Number of samples in an FFCV file; AnbenchError (one line) if it is not one."""
    from ffcv.reader import Reader

    try:
        return int(Reader(str(path)).num_samples)
    except Exception as exc:  # ffcv raises assorted errors on a damaged header
        raise AnbenchError(f"{path} is not a readable FFCV file ({type(exc).__name__})") from None


def _new_ffcv_loader(path: Path, request: DataRequest, indices):
    from ffcv.fields.decoders import CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import RandomHorizontalFlip, Squeeze, ToDevice, ToTensor, ToTorchImage

    res = request.resolution
    if request.split == "train":
        image = [RandomResizedCropRGBImageDecoder((res, res), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
                 RandomHorizontalFlip(flip_prob=0.5), ToTensor()]
    else:
        image = [CenterCropRGBImageDecoder((res, res), ratio=request.crop_ratio), ToTensor()]
    label = [IntDecoder(), ToTensor(), Squeeze()]
    if request.device.startswith("cuda"):
        import torch

        image.append(ToDevice(torch.device(request.device), non_blocking=True))
        label.append(ToDevice(torch.device(request.device), non_blocking=True))
    image.append(ToTorchImage(channels_last=False))
    loader = Loader(str(path), batch_size=request.batch_size, num_workers=max(1, request.num_workers),
                    order=OrderOption.SEQUENTIAL, indices=indices,
                    pipelines={"image": image, "label": label}, drop_last=request.drop_last, os_cache=True,
                    seed=request.seed % 2**31)
    return loader


# A Loader compiles its pipeline (numba) on first use: seconds per Loader. One Loader per
# (file, split, resolution, batch shape, seed) is kept and handed the next epoch's indices,
# so a run compiles once per resolution of its progressive-resizing schedule.
_LOADERS: dict[tuple, Any] = {}
_MAX_LOADERS = 4


def ffcv_loader(path: Path, request: DataRequest) -> _Batches:
    import numpy as np

    indices = np.array(indices_for(request, ffcv_samples(path)), dtype=np.uint64)
    key = (str(path), request.split, request.resolution, request.batch_size, request.num_workers, request.drop_last,
           request.crop_ratio, request.device, request.seed, len(indices))
    loader = _LOADERS.get(key)
    if loader is None:
        while len(_LOADERS) >= _MAX_LOADERS:
            _LOADERS.pop(next(iter(_LOADERS)))
        loader = _LOADERS[key] = _new_ffcv_loader(path, request, indices)
    else:
        loader.traversal_order.indices = indices  # this epoch's order (same length, so same len())
    return _Batches(loader, _batches(len(indices), request))


# --- ImageFolder (no ffcv) ---------------------------------------------------------


def folder_classes(root: Path) -> list[str]:
    """The class names, in label order, of the ImageFolder split ``root``: those of the sibling
    ``train/`` when there is one, so a val/ that lacks a class keeps the same labels as train/."""
    train = root.parent / "train"
    source = train if root.name != "train" and train.is_dir() else root
    classes = sorted(p.name for p in source.iterdir() if p.is_dir())
    extra = sorted({p.name for p in root.iterdir() if p.is_dir()} - set(classes))
    if extra:
        raise AnbenchError(f"ImageFolder {root}: class folder '{extra[0]}' is not in {source}")
    return classes


def folder_samples(root: Path) -> list[tuple[Path, int]]:
    classes = folder_classes(root)
    samples = [(path, index) for index, name in enumerate(classes) if (root / name).is_dir()
               for path in sorted((root / name).iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]
    if not samples:
        raise AnbenchError(f"ImageFolder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return samples


def random_resized_crop(image, size: int, rng: random.Random, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop (10 tries, then the centre crop), with Pillow."""
    from PIL import Image

    width, height = image.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))


def centre_crop(image, size: int, ratio: float):
    """FFCV's CenterCropRGBImageDecoder: the centre square of ``ratio`` x the short side, resized."""
    from PIL import Image

    width, height = image.size
    side = int(round(min(width, height) * ratio))
    left, top = (width - side) // 2, (height - side) // 2
    return image.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))


class FolderSplit:
    """A map-style dataset over (path, label) pairs, with the FFCV pipeline's crops in Pillow."""

    def __init__(self, samples: list[tuple[Path, int]], request: DataRequest) -> None:
        self.samples = samples
        self.request = request

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, position: int):
        import numpy as np
        import torch
        from PIL import Image

        path, label = self.samples[position]
        r = self.request
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except OSError as exc:
            raise AnbenchError(f"cannot read image {path}: {exc}") from None
        if r.split == "train":
            rng = random.Random(f"{r.seed}:{r.epoch}:{path}")
            image = random_resized_crop(image, r.resolution, rng)
            if rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            image = centre_crop(image, r.resolution, r.crop_ratio)
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1), label


def folder_loader(root: Path, request: DataRequest) -> _Batches:
    import torch

    samples = folder_samples(root)
    chosen = [samples[i] for i in indices_for(request, len(samples))]
    loader = torch.utils.data.DataLoader(FolderSplit(chosen, request), batch_size=request.batch_size, shuffle=False,
                                         num_workers=request.num_workers, drop_last=request.drop_last)
    return _Batches(loader, _batches(len(chosen), request))
