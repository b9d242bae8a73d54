"""FFCV loader images/s against the Pillow ImageFolder fallback, on the same images.

Writes a generated ImageFolder of JPEGs and its FFCV file into a temporary folder, then
times one train pass of each loader (random-resized crop + flip, normalised float
tensors) at the same resolution, batch size and worker count; the first FFCV pass
(numba compilation) is a warm-up and not timed. Prints images/s and the ratio.

    python benchmarks/ffcv_loader_speed.py [--images 512] [--res 160] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from anbench.plugin_types import DataRequest


def make_folder(root: Path, images: int) -> None:
    from PIL import Image, ImageDraw

    for i in range(images):
        folder = root / f"n{i % 10:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (400, 300), ((37 * i) % 255, (91 * i) % 255, (13 * i) % 255))
        ImageDraw.Draw(image).rectangle((i % 200, 20, 200 + i % 150, 250), fill=(255, 200, 0))
        image.save(folder / f"{i}.JPEG", quality=90)


def images_per_s(loader) -> float:
    count, start = 0, time.perf_counter()
    for images, _ in loader:
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--res", type=int, default=160)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    try:
        import ffcv  # noqa: F401
    except ImportError:
        sys.exit("ffcv is not installed: pip install 'anbench-datasets[ffcv]'")
    from anbench_datasets.imagenet import ffcv_loader, folder_loader, folder_samples
    from anbench_datasets.imagenet_cli import write

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folder(root / "train", args.images)
        write(folder_samples(root / "train"), root / "train.ffcv", 400, 90, 0.5, args.workers)
        request = DataRequest("train", args.batch_size, args.res, num_workers=args.workers, drop_last=True)
        images_per_s(ffcv_loader(root / "train.ffcv", request))  # warm-up: numba compiles the pipeline
        fast = images_per_s(ffcv_loader(root / "train.ffcv", request))
        slow = images_per_s(folder_loader(root / "train", request))
    print(f"FFCV loader      : {fast:8.1f} images/s")
    print(f"ImageFolder (PIL): {slow:8.1f} images/s")
    print(f"ratio FFCV/PIL   : {fast / slow:.2f}")


if __name__ == "__main__":
    main()
