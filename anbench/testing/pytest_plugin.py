"""The ``anbench`` pytest plugin (entry point ``pytest11``): fixtures for plugin tests.

Loaded automatically in every environment where anbench is installed; it must stay cheap
to import (no torch, no plugin loading at import time).
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anbench_store(tmp_path):
    """Path of a results store that does not exist yet, in this test's ``tmp_path``.

    Pass it to ``anbench ... --store`` or ``anbench.store.Store.open``; nothing outside
    ``tmp_path`` is touched.
    """
    return tmp_path / "anbench-test.db"


@pytest.fixture
def anbench_host(monkeypatch):
    """A fresh :class:`anbench.plugins.PluginHost` holding the built-in plugins only.

    Installed plugins are not loaded, and the plugin environment variables are cleared
    for the duration of the test, so the host is the same on every machine. Add plugins
    with :func:`anbench.testing.register_test_plugin`.
    """
    from anbench.plugins import make_plugin_host

    for var in ("ANBENCH_STRICT_PLUGINS", "ANBENCH_LOAD_PLUGINS", "ANBENCH_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    return make_plugin_host(load_entrypoints=False)


def pytest_configure(config):
    # so a plugin's own test suite can use anbench's markers under --strict-markers
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (skips when torch.cuda.is_available() is False)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds (virtual environments, subprocesses)")
