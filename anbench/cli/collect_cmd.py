"""``anbench collect``: rebuild training records in the store from wandb runs."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import AnbenchError
from .common import app, host, usable_tracker


@click.command("collect")
@click.option("--from-wandb", "project", metavar="ENTITY/PROJECT", help="An online wandb project (key from env/netrc).")
@click.option("--from-wandb-dir", "directory", type=click.Path(file_okay=False),
              help="A folder holding offline wandb run folders (offline-run-*).")
def collect_cmd(project, directory):
    """Rebuild training records from wandb runs made by `anbench train --wandb`.

    Each run's record gets the key `anbench train` gave it, so collecting twice (or into
    the store that trained it) adds nothing.

    \b
    Examples:
      anbench --store fresh.db collect --from-wandb-dir anbench-runs/
      anbench collect --from-wandb my-team/accel-nasbench
    """
    from ..train.collect import collect_into

    if bool(project) == bool(directory):
        raise AnbenchError("give exactly one of --from-wandb ENTITY/PROJECT or --from-wandb-dir DIR")
    tracker = usable_tracker(host(), "wandb", "collecting from wandb")
    if project and project.count("/") != 1:
        raise AnbenchError(f"--from-wandb takes ENTITY/PROJECT, not '{project}'")
    runs = tracker.collect_project(project) if project else tracker.collect_dir(Path(directory))
    added, already = collect_into(app().store(), runs, "wandb")
    click.echo(f"{added} training records collected, {already} already stored ({len(runs)} anbench runs read)")
