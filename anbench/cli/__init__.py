"""The ``anbench`` command line: thin click commands over the library.

Every command turns :class:`~anbench.errors.AnbenchError` into one ``error:`` line on
stderr and exit code 2. Plugins load when the group is built, so that their commands
appear; a broken plugin is one warning line (see :mod:`anbench.plugins`).
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import AnbenchError
from .common import DEFAULT_STORE, AppContext


class AnbenchGroup(click.Group):
    """Maps user mistakes to one line + exit 2, and keeps tracebacks for real bugs.

    The built-in commands join on the first look at :attr:`commands`, not at import: their
    modules import slowly, and a Ctrl-C then must reach :func:`main`'s handler (one line),
    not the interpreter's traceback. ``cli`` used directly (CliRunner) registers them the same way.
    """

    _builtins_registered = False

    @property
    def commands(self):
        if not self._builtins_registered:
            self._builtins_registered = True
            _register_commands()
        return self._commands

    @commands.setter
    def commands(self, value) -> None:
        self._commands = value

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        # click's own usage errors print usage, a hint and the error on three lines: one
        # `error:` line like every other mistake is easier to read and to grep in logs
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "anbench"
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        import sqlite3

        try:
            return super().invoke(ctx)
        except AnbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(getattr(exc, "exit_code", 2))
        except (KeyboardInterrupt, click.Abort):
            # everything finished before is stored; writes in flight were rolled back
            click.echo("error: interrupted", err=True)
            ctx.exit(130)
        except sqlite3.OperationalError as exc:
            obj = ctx.find_object(AppContext)
            click.echo(f"error: store {obj.store_path if obj else ''}: {exc}", err=True)
            ctx.exit(2)
        except sqlite3.DatabaseError as exc:
            # damage found after the store opened (e.g. garbled pages past the first ones)
            obj = ctx.find_object(AppContext)
            where = obj.store_path if obj is not None else "the store"
            click.echo(f"error: {where} is not a usable anbench store: {exc}; `anbench store check` says more", err=True)
            ctx.exit(2)
        finally:
            obj = ctx.find_object(AppContext)
            if obj is not None:
                obj.close()


@click.group(cls=AnbenchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="anbench")
@click.option("--store", "store_path", envvar="ANBENCH_STORE", default=DEFAULT_STORE, show_default=True,
              type=click.Path(), help="SQLite results store (env ANBENCH_STORE).")
@click.pass_context
def cli(ctx: click.Context, store_path: str) -> None:
    """anbench: collect hardware-aware NAS benchmark data.

    Sample architectures from the Accel-NASBench (MnasNet/EfficientNet) space, count
    their params and MACs, train, compile and measure them on devices from plugins,
    keep every result with provenance in a local store and export records that
    surrogate builders load as they are.

    \b
    Example:
      anbench sample -n 5 --seed 1 --format jsonl > archs.jsonl
      anbench measure --device cpu --arch - < archs.jsonl
      anbench export --format anb-json --out dataset/
    """
    from pathlib import Path

    ctx.obj = AppContext(store_path=Path(store_path))


def _register_commands() -> None:
    from . import (arch_cmds, collect_cmd, compile_cmd, data, data_group, measure_cmd, plugin_cmds, report_cmd,
                   store_cmds, train_cmd)

    cli.add_command(arch_cmds.sample_cmd)
    cli.add_command(arch_cmds.arch_group)
    cli.add_command(measure_cmd.measure_cmd)
    cli.add_command(compile_cmd.compile_cmd)
    cli.add_command(data.results_cmd)
    cli.add_command(data.export_cmd)
    cli.add_command(data.import_cmd)
    cli.add_command(plugin_cmds.plugins_cmd)
    cli.add_command(plugin_cmds.doctor_cmd)
    cli.add_command(store_cmds.store_group)
    cli.add_command(report_cmd.report_cmd)
    cli.add_command(train_cmd.train_cmd)
    cli.add_command(collect_cmd.collect_cmd)
    cli.add_command(data_group.data_group)


def _load_plugins() -> None:
    from ..plugins import get_host

    host = get_host()
    host.add_commands(cli)
    if host.errors and os.environ.get("_ANBENCH_COMPLETE") is None:
        host.warn()


def main() -> None:
    try:
        _load_plugins()  # the first look at cli.commands: imports every command module
        cli.main(prog_name="anbench")
    except AnbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        # Ctrl-C while the commands load; later ones are handled by the group itself
        click.echo("error: interrupted", err=True)
        sys.exit(130)
