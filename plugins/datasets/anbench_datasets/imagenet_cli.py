"""``anbench data write-ffcv``: an ImageFolder to one FFCV file (FFCV-ImageNet's writer settings)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from anbench.errors import AnbenchError


@click.command("write-ffcv")
@click.option("--src", required=True, type=click.Path(file_okay=False), help="ImageFolder root (<class>/<image> files).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="FFCV file to write, e.g. train_400_0.50_90.ffcv (train*/val* names are what training finds).")
@click.option("--max-res", type=click.IntRange(min=8), default=400, show_default=True,
              help="Longest image side kept, in pixels (larger images are shrunk).")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=90, show_default=True, help="JPEG quality.")
@click.option("--compress-probability", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Fraction of images stored as JPEG (the rest raw pixels).")
@click.option("--num-workers", type=click.IntRange(min=1), default=max(1, (os.cpu_count() or 2) // 2), show_default=True,
              help="Writer processes.")
def write_ffcv_cmd(src, out_file, max_res, jpeg_quality, compress_probability, num_workers):
    """Write an ImageFolder as an FFCV file (image + label fields) for fast training.

    The settings are FFCV-ImageNet's (`write_imagenet.sh 400 0.50 90`, the files of the
    Accel-NASBench collection). The file appears complete or not at all.

    \b
    Examples:
      anbench data write-ffcv --src imagenet/train --out data/train_400_0.50_90.ffcv
      anbench data write-ffcv --src imagenet/val --out data/val_400_0.50_90.ffcv
      anbench train --dataset imagenet --data-dir data/ -n 10 --trainer cuda
    """
    from .imagenet import ffcv_samples, folder_samples

    try:
        import ffcv  # noqa: F401
    except ImportError:
        raise AnbenchError("writing FFCV files needs ffcv: pip install 'anbench-datasets[ffcv]' "
                           "(after apt-get install pkg-config libturbojpeg0-dev libopencv-dev)") from None
    source = Path(src)
    if not source.is_dir():
        raise AnbenchError(f"--src {source} is not a folder")
    samples = folder_samples(source)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    write(samples, out, max_res, jpeg_quality, compress_probability, num_workers)
    click.echo(f"wrote {out}: {ffcv_samples(out)} images, {len({label for _, label in samples})} classes")


class _Images:
    def __init__(self, samples) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        import numpy as np
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8), label


def write(samples, out: Path, max_res: int, jpeg_quality: int, compress_probability: float, num_workers: int) -> None:
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fields = {"image": RGBImageField(write_mode="proportion", max_resolution=max_res, jpeg_quality=jpeg_quality,
                                     compress_probability=compress_probability),
              "label": IntField()}
    try:
        DatasetWriter(str(tmp), fields, num_workers=num_workers).from_indexed_dataset(_Images(samples))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def register(cli) -> None:
    from anbench.cli.data_group import data_commands

    data_commands(cli).add_command(write_ffcv_cmd)
