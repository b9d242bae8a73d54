"""``anbench data make-sample``: small files in the original formats of the 1-D tasks.

The command joins the core's ``data`` group (beside ``data write-ffcv``).
"""

from __future__ import annotations

import click

TASKS = ("ecg", "satellite", "deepsea")


@click.command("make-sample")
@click.option("--dataset", "task", required=True, type=click.Choice(TASKS), help="The task whose files to write.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the files (created if missing); pass it to --data-dir.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the generated content.")
@click.option("--overwrite", is_flag=True, help="Replace files of an earlier sample in --out.")
def make_sample_cmd(task, out_dir, seed, overwrite):
    """Write small generated files in exactly the original NAS-Bench-360 formats.

    ecg: challenge2017.pkl (pickled dict of 'data' signals and 'label' N/A/O/~);
    satellite: satellite_train.npy and satellite_test.npy (dicts of 'data' N x 46 and
    'label' 1..24); deepsea: deepsea_filtered.npz (x_train, y_train, x_test, y_test).
    The content is synthetic and small, so training runs end to end in seconds
    without the real data; the real files load the same way.

    \b
    Examples:
      anbench data make-sample --dataset ecg --out ecg-sample/
      anbench train --dataset ecg --data-dir ecg-sample/ -n 2 --epochs 1 --seed 0
    """
    from .seq_samples import make_sample

    for path, what in make_sample(task, out_dir, seed=seed, overwrite=overwrite):
        click.echo(f"wrote {path} ({what})")
    click.echo(f"train on it with: anbench train --dataset {task} --data-dir {out_dir}")


def register(cli: click.Group) -> None:
    from anbench.cli.data_group import data_commands

    data_commands(cli).add_command(make_sample_cmd)
