"""``anbench store check`` and ``anbench store backup``: the store's health and safe copies."""

from __future__ import annotations

import click

from ..errors import AnbenchError
from .common import app, format_option, print_json


@click.group("store")
def store_group():
    """Check the results store or copy it safely.

    \b
    Examples:
      anbench store check
      anbench --store campaign.db store backup campaign-2026-11-29.db
    """


@store_group.command("check")
@format_option("table", "json")
def check_cmd(fmt):
    """Check the store: SQLite's integrity check, schema version, orphans, stale leases.

    Exits 0 when healthy and 1 when something is wrong (each problem one line).

    \b
    Example:
      anbench --store campaign.db store check
    """
    import sqlite3

    store = app().store(probe=False)  # a damaged store is what this command is for
    problems = store.check()
    try:
        counts = {"architectures": store.count_architectures(), "results": store.count_results(),
                  "leases": len(store.leases())}
    except sqlite3.DatabaseError as exc:
        counts = {"architectures": None, "results": None, "leases": None}
        if not problems:
            problems.append(f"database error: {exc}")
    if fmt == "json":
        print_json({"store": str(store.path), "ok": not problems, "problems": problems, **counts})
    else:
        if counts["architectures"] is None:
            click.echo(f"{store.path}: cannot count its rows")
        else:
            click.echo(f"{store.path}: {counts['architectures']} architectures, {counts['results']} results, "
                       f"{counts['leases']} leases held")
        for line in problems:
            click.echo(f"problem: {line}")
        click.echo("ok" if not problems else f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found")
    if problems:
        raise click.exceptions.Exit(1)


@store_group.command("backup")
@click.argument("out", type=click.Path(dir_okay=False))
def backup_cmd(out):
    """Copy the live store to OUT with SQLite's online backup (safe while workers write).

    \b
    Example:
      anbench --store campaign.db store backup backups/campaign.db
    """
    store = app().store()
    path = store.backup(out)
    from ..store import Store

    with Store.open(path) as copy:
        problems = copy.check()
        if problems:
            raise AnbenchError(f"the backup {path} failed its check: {problems[0]}")
        click.echo(f"backed up {store.path} to {path} ({copy.count_architectures()} architectures, "
                   f"{copy.count_results()} results)")
