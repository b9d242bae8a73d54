"""The plugin host: every hook exercised through a fresh host, and loading robustness.

Test plugins are real installed distributions as far as importlib.metadata can tell: a
``*.dist-info`` folder with METADATA and entry_points.txt next to the plugin module, in a
temporary folder put on sys.path. So entry-point discovery, distribution names and
versions take the same path as for a pip-installed plugin.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from anbench import hookspecs
from anbench.errors import AnbenchError
from anbench.plugins import PluginHost, make_plugin_host

_unique = itertools.count()
PLUGIN_ENV = ("ANBENCH_STRICT_PLUGINS", "ANBENCH_LOAD_PLUGINS", "ANBENCH_DISABLE_PLUGINS")

HOOK_NAMES = sorted(name for name in dir(PluginHost().pm.hook) if name.startswith("register_"))


@pytest.fixture(autouse=True)
def clean_plugin_env(monkeypatch):
    for var in PLUGIN_ENV:
        monkeypatch.delenv(var, raising=False)


class Site:
    """A folder on sys.path into which test plugin distributions are 'installed'."""

    def __init__(self, root: Path, monkeypatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.installed: list[str] = []
        root.mkdir()
        monkeypatch.syspath_prepend(str(root))

    def install(self, entry_point: str, source: str, dist: str | None = None, version: str = "1.0") -> str:
        """Write a distribution with one ``anbench`` entry point ``entry_point`` whose
        module has ``source``; return the distribution name. Module names are unique per
        call, so sys.modules never hands back a previous test's module."""
        module = f"anbench_testplugin_{entry_point.replace('-', '_')}_{next(_unique)}"
        dist = dist or f"anbench-test-{entry_point}"
        (self.root / f"{module}.py").write_text("from anbench import hookimpl\n" + textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[anbench]\n{entry_point} = {module}\n")
        self.monkeypatch.delitem(sys.modules, module, raising=False)
        self.installed.append(entry_point)
        return dist

    def host(self, only_these: bool = True) -> PluginHost:
        """A fresh host; by default loading only this site's plugins (the real ones
        installed in the environment stay out of the picture)."""
        if only_these and "ANBENCH_LOAD_PLUGINS" not in __import__("os").environ:
            self.monkeypatch.setenv("ANBENCH_LOAD_PLUGINS", ",".join(self.installed))
        return make_plugin_host()


@pytest.fixture
def site(tmp_path, monkeypatch):
    return Site(tmp_path / "site", monkeypatch)


DEVICE_PLUGIN = '''
class Runner:
    name = "{name}"
    summary = "a test device"
    def availability(self):
        return {reason!r}

@hookimpl
def register_devices(register):
    register(Runner())
'''


def device_plugin(name: str, reason: str | None = None) -> str:
    return DEVICE_PLUGIN.format(name=name, reason=reason)


# --- every hook has a test ----------------------------------------------------------------


def test_hook_names_come_from_the_spec_module():
    assert HOOK_NAMES == sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "anbench_spec"))
    assert {"register_devices", "register_datasets", "register_trainers", "register_compilers",
            "register_commands"} <= set(HOOK_NAMES)


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hook_has_a_test(hook):
    assert callable(globals().get(f"test_hook_{hook}")), f"add a test named test_hook_{hook} to {__file__}"


def test_hook_register_devices(site):
    dist = site.install("toydevices", device_plugin("toy", reason="toy board unplugged"), version="2.3")
    host = site.host()
    assert not host.errors
    runner = host.registry.device("toy")
    assert runner.summary == "a test device"
    info = host.infos["toydevices"]
    assert (info.distribution, info.version, info.builtin) == (dist, "2.3", False)
    assert info.hooks == ["register_devices"] and info.provides["devices"] == ["toy"]
    assert host.availability()["devices"]["toy"] == "toy board unplugged"
    assert host.availability()["devices"]["cpu"] is None  # built-ins load beside it
    assert host.versions()["toydevices"] == "2.3"


def test_hook_register_datasets(site):
    site.install("toydata", '''
    class Data:
        name = "toyset"
        summary = "ten 1-D sequences"
        task = "seq1d"
        num_classes = 3
        input_shape = (1, 10)
        def availability(self):
            return None

    @hookimpl
    def register_datasets(register):
        register(Data())
    ''')
    host = site.host()
    dataset = host.registry.dataset("toyset")
    assert (dataset.task, dataset.num_classes, dataset.input_shape) == ("seq1d", 3, (1, 10))
    assert host.infos["toydata"].provides["datasets"] == ["toyset"]
    assert set(host.registry.items["datasets"]) == {"synthetic", "toyset"}


def test_hook_register_trainers(site):
    site.install("toytrain", '''
    from anbench.plugin_types import TrainResult

    class Trainer:
        name = "toytrainer"
        summary = "pretends to train"
        def availability(self):
            return None
        def train(self, request):
            return TrainResult(val_top1=50.0, val_top5=None, train_time_s=0.5, metric_epochs=(1,))

    @hookimpl
    def register_trainers(register):
        register(Trainer())
    ''')
    host = site.host()
    trainer = host.registry.trainer("toytrainer")
    assert trainer.train(None).val_top1 == 50.0
    assert host.infos["toytrain"].hooks == ["register_trainers"]
    with pytest.raises(AnbenchError, match="unknown trainer 'nope'; known trainers: cpu, toytrainer"):
        host.registry.trainer("nope")


def test_hook_register_trackers(site, tmp_path):
    site.install("toytrack", '''
    LOG = []

    class Tracker:
        name = "toytracker"
        summary = "remembers what it is told"
        def availability(self):
            return None
        def start(self, run):
            LOG.append(("start", run.name, run.group))
            return run.name
        def log_epoch(self, handle, row):
            LOG.append(("epoch", handle, row["epoch"]))
        def finish(self, handle, metrics, checkpoint):
            LOG.append(("finish", handle, metrics["val_top1"]))

    @hookimpl
    def register_trackers(register):
        register(Tracker())
    ''')
    from anbench.plugin_types import TrackerRun

    host = site.host()
    tracker = host.registry.tracker("toytracker")
    handle = tracker.start(TrackerRun("model-1", "sweep-a", {"epochs": 1}, tmp_path))
    tracker.log_epoch(handle, {"epoch": 0})
    tracker.finish(handle, {"val_top1": 12.5}, None)
    assert __import__(host.infos["toytrack"].module).LOG == [("start", "model-1", "sweep-a"), ("epoch", "model-1", 0),
                                          ("finish", "model-1", 12.5)]
    assert host.infos["toytrack"].provides["trackers"] == ["toytracker"]
    with pytest.raises(AnbenchError, match="unknown tracker 'nope'; known trackers: toytracker"):
        host.registry.tracker("nope")


def test_hook_register_compilers(site):
    compiler = '''
    class Compiler:
        name = "{name}"
        summary = "a test compiler"
        targets = {targets!r}
        def availability(self):
            return None

    @hookimpl
    def register_compilers(register):
        register(Compiler())
    '''
    site.install("acompiler", compiler.format(name="toycc", targets=("board1", "board2")))
    site.install("bcompiler", compiler.format(name="othercc", targets=("board2",)))
    host = site.host()
    assert host.registry.compiler_for_target("board1").name == "toycc"
    assert host.registry.compiler_for_target("board2").name == "toycc"
    # a target already claimed is a load error of the later plugin
    assert [e.plugin for e in host.errors] == ["bcompiler"]
    assert "target 'board2' is already claimed by compiler 'toycc'" in host.errors[0].error
    assert "othercc" not in host.registry.items["compilers"]


def test_hook_register_commands(site):
    site.install("toycmd", '''
    import click

    @click.command("hello")
    @click.option("--name", default="world")
    def hello(name):
        click.echo(f"hello {name}")

    @hookimpl
    def register_commands(cli):
        cli.add_command(hello)
    ''')
    site.install("shadow", '''
    import click

    @hookimpl
    def register_commands(cli):
        cli.add_command(click.Command("plugins", callback=lambda: click.echo("hijacked")))
    ''')
    host = site.host()

    @click.group()
    def cli():
        pass

    @cli.command("plugins")
    def plugins():
        click.echo("the real one")

    host.add_commands(cli)
    assert CliRunner().invoke(cli, ["hello", "--name", "dpu"]).output == "hello dpu\n"
    # a plugin may not shadow a built-in command: it fails, the built-in stays
    assert CliRunner().invoke(cli, ["plugins"]).output == "the real one\n"
    assert [e.plugin for e in host.errors] == ["shadow"]
    assert "shadows a built-in command" in host.errors[0].error


# --- loading robustness -------------------------------------------------------------------


def test_plugin_that_raises_at_import_is_one_warning_line(site, capsys):
    site.install("agood", device_plugin("gooddev"))
    site.install("broken", 'raise RuntimeError("vendor SDK exploded\\nwith a second line")\n')
    site.install("zgood", device_plugin("otherdev"))
    host = site.host()
    assert {"gooddev", "otherdev", "cpu"} <= set(host.registry.items["devices"])
    host.warn()
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("anbench: warning: plugin 'broken' (anbench-test-broken) failed to load: RuntimeError: ")
    assert "vendor SDK exploded with a second line" in err
    assert host.infos["broken"].error and not host.infos["agood"].error


def test_strict_mode_makes_a_load_error_fatal(site, monkeypatch):
    site.install("agood", device_plugin("gooddev"))
    site.install("broken", "import no_such_module_anywhere\n")
    monkeypatch.setenv("ANBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(AnbenchError, match=r"plugin 'broken' .*No module named 'no_such_module_anywhere'.*STRICT"):
        site.host()
    monkeypatch.setenv("ANBENCH_STRICT_PLUGINS", "0")  # "0" means off
    assert [e.plugin for e in site.host().errors] == ["broken"]


def test_load_plugins_allow_list(site, monkeypatch):
    site.install("alpha", device_plugin("alphadev"))
    beta_dist = site.install("beta", device_plugin("betadev"))
    monkeypatch.setenv("ANBENCH_LOAD_PLUGINS", "alpha")
    host = site.host()
    assert "alphadev" in host.registry.items["devices"] and "betadev" not in host.registry.items["devices"]
    monkeypatch.setenv("ANBENCH_LOAD_PLUGINS", f" {beta_dist} , ")  # distribution names work too
    host = site.host()
    assert set(host.registry.items["devices"]) == {"cpu", "betadev"}


def test_load_plugins_empty_loads_no_installed_plugin(site, monkeypatch):
    site.install("alpha", device_plugin("alphadev"))
    monkeypatch.setenv("ANBENCH_LOAD_PLUGINS", "")
    host = site.host()
    assert set(host.infos) == {"cpu", "synthetic"}  # built-ins always load


def test_load_plugins_unset_loads_every_installed_plugin(site):
    site.install("alpha", device_plugin("alphadev"))
    site.install("beta", device_plugin("betadev"))
    host = site.host(only_these=False)
    assert {"alpha", "beta", "cpu", "synthetic"} <= set(host.infos)


def test_disable_plugins_block_list(site, monkeypatch):
    site.install("alpha", device_plugin("alphadev"))
    beta_dist = site.install("beta", device_plugin("betadev"))
    monkeypatch.setenv("ANBENCH_DISABLE_PLUGINS", "alpha,cpu")
    host = site.host()
    assert set(host.registry.items["devices"]) == {"betadev"}  # built-ins can be blocked too
    monkeypatch.setenv("ANBENCH_DISABLE_PLUGINS", beta_dist)
    assert "betadev" not in site.host().registry.items["devices"]


def test_misspelled_hookimpl_is_a_load_error(site):
    site.install("typo", '''
    @hookimpl
    def register_device(register):
        raise AssertionError("must never be called")
    ''')
    site.install("fine", device_plugin("finedev"))
    host = site.host()
    assert [e.plugin for e in host.errors] == ["typo"]
    assert "register_device" in host.errors[0].error
    assert not host.pm.has_plugin("typo") and host.registry.device("finedev")


def test_register_hook_that_raises_fails_that_plugin_alone(site):
    site.install("halfway", '''
    class Runner:
        name = "halfdev"
        summary = "registered before the crash"
        def availability(self):
            return None

    @hookimpl
    def register_devices(register):
        register(Runner())

    @hookimpl
    def register_datasets(register):
        raise OSError("dataset index is corrupt")
    ''')
    site.install("fine", device_plugin("finedev"))
    host = site.host()
    assert [(e.plugin, e.error) for e in host.errors] == [("halfway", "OSError: dataset index is corrupt")]
    # what the failed plugin registered before failing is gone with it
    assert "halfdev" not in host.registry.items["devices"]
    assert host.registry.device("finedev")
    assert "halfway" not in host.versions()


def test_duplicate_device_name_fails_the_later_plugin(site):
    site.install("afirst", device_plugin("samename", reason=None))
    site.install("bsecond", device_plugin("samename", reason="the impostor"))
    site.install("cthird", device_plugin("cpu"))  # a built-in's name is taken too
    host = site.host()
    assert host.registry.owner[("devices", "samename")] == "afirst"
    assert host.registry.device("samename").availability() is None
    errors = {e.plugin: e.error for e in host.errors}
    assert set(errors) == {"bsecond", "cthird"}
    assert "device 'samename' is already registered by plugin 'afirst'" in errors["bsecond"]
    assert "device 'cpu' is already registered by plugin 'cpu'" in errors["cthird"]


def test_registered_object_without_a_name_is_a_load_error(site):
    site.install("nameless", '''
    @hookimpl
    def register_devices(register):
        register(object())
    ''')
    host = site.host()
    assert [e.plugin for e in host.errors] == ["nameless"] and "no string 'name'" in host.errors[0].error


def test_entry_point_named_like_a_builtin_fails_alone_and_leaves_the_builtin(site):
    site.install("cpu", device_plugin("notcpu"), dist="anbench-impostor")
    host = site.host()
    assert [(e.plugin, e.distribution) for e in host.errors] == [("cpu@anbench-impostor", "anbench-impostor")]
    assert "plugin name 'cpu' is already taken by anbench" in host.errors[0].error
    assert host.registry.owner[("devices", "cpu")] == "cpu"  # the built-in is still registered
    assert "notcpu" not in host.registry.items["devices"]


def test_two_distributions_with_one_entry_point_name_the_second_fails(site):
    site.install("twin", device_plugin("twin-a"), dist="anbench-twin-a")
    site.install("twin", device_plugin("twin-b"), dist="anbench-twin-b")
    host = site.host()
    assert len(host.errors) == 1 and "plugin name 'twin' is already taken by anbench-twin-" in host.errors[0].error
    assert len([d for d in ("twin-a", "twin-b") if d in host.registry.items["devices"]]) == 1


def test_a_plugin_raising_anbench_error_at_import_is_a_load_error_not_a_dead_cli(site):
    site.install("grumpy", '''
    from anbench.errors import AnbenchError
    raise AnbenchError("grumpy needs GRUMPY_HOME")
    ''')
    host = site.host()
    assert [(e.plugin, e.error) for e in host.errors] == [("grumpy", "AnbenchError: grumpy needs GRUMPY_HOME")]
    assert host.registry.device("cpu")


TRACKER_THAT_WRITES = '''
import json, os

class Tracker:
    name = "filetracker"
    summary = "writes what it is told to $FILETRACKER_LOG"
    def availability(self):
        return None
    def _log(self, *entry):
        with open(os.environ["FILETRACKER_LOG"], "a") as handle:
            handle.write(json.dumps(entry) + "\\n")
    def start(self, run):
        self._log("start", run.group is not None, sorted(run.options))
        return run.name
    def log_epoch(self, handle, row):
        self._log("epoch", row["epoch"])
    def finish(self, handle, metrics, checkpoint):
        self._log("finish", metrics["verdict"], checkpoint is not None)

@hookimpl
def register_trackers(register):
    register(Tracker())
'''


@pytest.mark.slow
def test_train_turns_on_a_third_party_tracker_with_track(site, tmp_path):
    # a tracker registered by an installed distribution, driven by a real `anbench train`
    site.install("filetrack", TRACKER_THAT_WRITES)
    log = tmp_path / "tracker.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site.root), os.environ.get("PYTHONPATH", "")]),
           "ANBENCH_LOAD_PLUGINS": "filetrack", "FILETRACKER_LOG": str(log), "OMP_NUM_THREADS": "1"}
    anbench = str(Path(sys.executable).with_name("anbench"))
    train = [anbench, "--store", str(tmp_path / "s.db"), "train", "--dataset", "synthetic", "--arch", "smallest",
             "--epochs", "2", "--max-train-samples", "64", "--max-val-samples", "32", "--batch-size", "32"]
    done = subprocess.run([*train, "--track", "filetracker"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries == [["start", True, []], ["epoch", 0], ["epoch", 1], ["finish", "VALID", True]]
    unknown = subprocess.run([*train, "--track", "nope"], capture_output=True, text=True, env=env, timeout=600)
    assert unknown.returncode == 2
    assert unknown.stderr == "error: --track nope needs the nope tracker plugin (registered trackers: filetracker)\n"
