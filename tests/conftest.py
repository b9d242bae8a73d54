import os

import pytest
from click.testing import CliRunner

# keep plugin selection and stores of the developer's shell out of the tests
for var in ("ANBENCH_STORE", "ANBENCH_LOAD_PLUGINS", "ANBENCH_DISABLE_PLUGINS", "ANBENCH_STRICT_PLUGINS"):
    os.environ.pop(var, None)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "anbench.db"


@pytest.fixture
def run_cli(store_path):
    """Invoke the real click group in-process; returns click's Result (exit_code, stdout, stderr)."""
    from anbench.cli import cli

    def run(*args, input=None, store=True):
        argv = (["--store", str(store_path)] if store else []) + [str(a) for a in args]
        return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)

    return run
