"""The ``anbench data`` group: dataset files (converters and samples come from dataset plugins)."""

from __future__ import annotations

import click


@click.group("data")
def data_group():
    """Prepare dataset files: converted copies and small samples of datasets.

    The subcommands come from dataset plugins (e.g. `write-ffcv` and `make-sample` from
    anbench-datasets).

    \b
    Examples:
      anbench data write-ffcv --src imagenet/train --out data/train_400_0.50_90.ffcv
      anbench data make-sample --dataset ecg --out ecg-sample/
    """


def data_commands(cli: click.Group) -> click.Group:
    """The ``data`` group of ``cli`` (for plugins adding subcommands), created if absent."""
    group = cli.commands.get("data")
    if group is None:
        group = data_group
        cli.add_command(group)
    if not isinstance(group, click.Group):
        raise ValueError("the command 'data' is not a group")
    return group
