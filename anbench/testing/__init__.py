"""Contract-test kit for anbench plugin authors.

Installed with anbench as the pytest plugin ``anbench`` (entry point group ``pytest11``),
so its fixtures are available in any test suite of an environment where anbench is
installed:

* ``anbench_store``: a path to a fresh, empty results store in ``tmp_path``;
* ``anbench_host``: a fresh :class:`anbench.plugins.PluginHost` with the built-ins only.

Classes to subclass (they are not collected themselves; name your subclass ``Test...``):

* :class:`DeviceContract`: the conformance suite for a device runner; provide a
  ``device_runner`` fixture.
* :class:`DatasetContract` / :class:`CompilerContract` / :class:`TrackerContract`: the
  smaller suites for the other registries; provide ``dataset`` / ``compiler`` / ``tracker``
  fixtures. The dataset suite also reads a few samples through ``loader`` when the
  dataset is available.

Helper: :func:`register_test_plugin` registers a module or object with ``@anbench.hookimpl``
functions on a host (re-collecting its registries) or on a bare pluggy manager.

Importing this package is cheap: it imports neither torch nor any vendor SDK.
"""

from .contract import CompilerContract, DatasetContract, DeviceContract, SECRET_KEY_WORDS, TrackerContract
from .helpers import register_test_plugin

__all__ = ["CompilerContract", "DatasetContract", "DeviceContract", "SECRET_KEY_WORDS", "TrackerContract",
           "register_test_plugin"]
