"""Plugins installed by pip into a fresh virtual environment, used through the real
``anbench`` console script.

One environment per module (built once, a few seconds): ``python -m venv --without-pip``,
then a ``.pth`` file that runs ``site.addsitedir(<this environment's site-packages>)`` so
torch, click, pluggy and setuptools are importable there without any network (a plain
path line would not process the ``.pth`` files of editable installs inside it), then this
environment's pip, pointed at the new interpreter with ``--python``, installs with
``--no-deps --no-build-isolation --no-index``: the anbench project (non-editable), the
four plugin distributions of ``plugins/``, and two throw-away plugin distributions
written here: ``anbench-toydev`` (a device doing a real tiny computation) and
``anbench-toybroken`` (raises at import). Sources are copied to a temporary folder first
so the builds leave nothing in the repository.

The new environment's own site-packages comes first on its sys.path, so its copies of
anbench and the plugins shadow the editable ones of the outer environment.
"""

from __future__ import annotations

import importlib.util

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REAL_PLUGINS = {"anbench-datasets": "datasets", "anbench-gpu-cuda": "gpu_cuda",
                "anbench-tpu-xla": "tpu_xla", "anbench-fpga-dpu": "fpga_dpu"}

TOYDEV = '''
"""A throw-away device plugin: a real matrix-multiply "network" on the CPU."""
import os

import anbench


class ToyDevice:
    name = "toydev"
    summary = "a tiny real computation on the CPU (test plugin)"

    def availability(self):
        return None

    def describe(self):
        return {"kind": "toy", "pid": os.getpid()}

    def prepare(self, request):
        import torch

        if request.precision != "fp32":
            raise anbench.errors.AnbenchError("toydev runs fp32 only")
        generator = torch.Generator().manual_seed(request.seed)
        inputs = torch.randn(request.batch_size, *request.input_shape, generator=generator).flatten(1)
        weight = torch.randn(inputs.shape[1], 64, generator=generator)
        return {"inputs": inputs, "weight": weight, "batches": 0}

    def run(self, prepared, batches):
        for _ in range(batches):
            (prepared["inputs"] @ prepared["weight"]).relu_().sum()
        prepared["batches"] += batches

    def release(self, prepared):
        log = os.environ.get("TOYDEV_LOG")
        if log:  # lets the test see that anbench really drove this runner
            with open(log, "a") as out:
                out.write(f"{prepared['inputs'].shape[0]} {prepared['batches']}\\n")


@anbench.hookimpl
def register_devices(register):
    register(ToyDevice())
'''

TOYBROKEN = '''
raise ImportError("toybroken needs libvendor.so.3, which is not installed")
'''


def _write_dist(folder: Path, dist: str, module: str, source: str, entry_point: str) -> Path:
    folder.mkdir(parents=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.0.1"
        dependencies = ["anbench"]

        [project.entry-points.anbench]
        {entry_point} = "{module}"

        [tool.setuptools]
        py-modules = ["{module}"]
        """))
    return folder


def _copy_project(source: Path, target: Path) -> Path:
    # only what a build reads: virtual environments (.venv-xla holds GBs), outputs and data stay behind
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", "dist", ".venv*", "tests", ".git", "plugins", "docs", "*.db",
        "*.db-*", "demo-out", "anbench-artifacts", "*-runs", "benchmarks"))
    return target


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "venv" / "bin"

    def anbench(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("ANBENCH_", "PYTHON", "VIRTUAL_ENV"))}
        full_env.update(env or {})
        return subprocess.run([str(self.bin / "anbench"), *args], capture_output=True, text=True,
                              env=full_env, cwd=cwd or self.root, timeout=120)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("thirdparty")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    new_python = root / "venv" / "bin" / "python"
    new_site = subprocess.run([str(new_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    main_site = sysconfig.get_paths()["purelib"]
    Path(new_site, "_anbench_outer_env.pth").write_text(f"import site; site.addsitedir({main_site!r})\n")

    src = root / "src"
    projects = [_copy_project(ROOT, src / "anbench")]
    projects += [_copy_project(ROOT / "plugins" / folder, src / folder) for folder in REAL_PLUGINS.values()]
    projects.append(_write_dist(src / "toydev", "anbench-toydev", "anbench_toydev", TOYDEV, "toydev"))
    projects.append(_write_dist(src / "toybroken", "anbench-toybroken", "anbench_toybroken", TOYBROKEN, "toybroken"))
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(new_python), "install", "--no-deps",
                          "--no-build-isolation", "--no-index", "--disable-pip-version-check", "-q",
                          *map(str, projects)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Env(root)


def test_the_new_environment_runs_its_own_copies(venv):
    code = "import anbench, anbench_toydev, anbench_gpu_cuda; print(anbench.__file__); print(anbench_gpu_cuda.__file__)"
    out = subprocess.run([str(venv.bin / "python"), "-c", code], capture_output=True, text=True, check=True,
                         cwd=venv.root).stdout  # not the repository: "-c" puts the cwd first on sys.path
    assert all(line.startswith(str(venv.root / "venv")) for line in out.splitlines()), out


def test_plugins_json_lists_the_installed_device(venv):
    result = venv.anbench("plugins", "--format", "json", env={"ANBENCH_DISABLE_PLUGINS": "toybroken"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    toy = listing["toydev"]
    assert (toy["distribution"], toy["version"], toy["builtin"], toy["module"]) == (
        "anbench-toydev", "0.0.1", False, "anbench_toydev")
    assert toy["hooks"] == ["register_devices"] and toy["provides"]["devices"] == ["toydev"]
    assert toy["availability"] == {"devices": {"toydev": None}} and toy["error"] is None


def test_measure_runs_through_the_installed_device(venv, tmp_path):
    log = tmp_path / "toydev.log"
    result = venv.anbench("--store", str(tmp_path / "store.db"), "measure", "--device", "toydev", "--arch", "smallest",
                          "--batch-size", "2", "--resolution", "32", "--repeats", "2", "--format", "json",
                          env={"ANBENCH_DISABLE_PLUGINS": "toybroken", "TOYDEV_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["throughput_ips_mean"] > 0 and row["latency_ms_mean"] > 0
    # throughput at batch 2 and latency at batch 1, each warm-up (2) + 2 windows x 3 batches
    assert sorted(log.read_text().split("\n")[:-1]) == ["1 8", "2 8"]
    assert (tmp_path / "store.db").exists()


def test_broken_plugin_is_one_warning_line(venv, tmp_path):
    result = venv.anbench("--help")
    assert result.returncode == 0 and "measure" in result.stdout
    warning = ("anbench: warning: plugin 'toybroken' (anbench-toybroken) failed to load: "
               "ImportError: toybroken needs libvendor.so.3, which is not installed\n")
    assert result.stderr == warning

    result = venv.anbench("plugins", "--format", "json")
    assert result.returncode == 0 and result.stderr == warning
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert listing["toybroken"]["error"].startswith("ImportError: toybroken needs libvendor.so.3")
    assert listing["toydev"]["error"] is None

    result = venv.anbench("--store", str(tmp_path / "store.db"), "measure", "--device", "cpu", "--arch", "smallest",
                          "--batch-size", "2", "--resolution", "32", "--repeats", "2", "--format", "json")
    assert result.returncode == 0 and result.stderr == warning
    assert json.loads(result.stdout)[0]["throughput_ips_mean"] > 0


def test_broken_plugin_is_fatal_in_strict_mode(venv):
    result = venv.anbench("plugins", env={"ANBENCH_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: anbench: plugin 'toybroken'") and result.stderr.count("\n") == 1


def test_real_plugin_distributions_are_listed_with_availability(venv):
    result = venv.anbench("plugins", "--format", "json", env={"ANBENCH_DISABLE_PLUGINS": "toybroken"})
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    for dist, name in REAL_PLUGINS.items():
        assert listing[name]["distribution"] == dist and listing[name]["version"] == "0.1.0"
        assert listing[name]["error"] is None and not listing[name]["builtin"]
    assert listing["cpu"]["builtin"] and listing["cpu"]["availability"] == {"devices": {"cpu": None},
                                                                          "trainers": {"cpu": None}}
    assert listing["synthetic"]["availability"] == {"datasets": {"synthetic": None}}
    assert listing["datasets"]["availability"]["datasets"] == {
        # the test venv sees this environment's packages: ffcv is there after `make install`
        "imagenet": "ffcv is not installed" if importlib.util.find_spec("ffcv") is None
                    else "set ANBENCH_IMAGENET_DIR to the folder with the train/val .ffcv files",
        "ecg": "set ANBENCH_ECG_DIR to the folder with challenge2017.pkl",
        "satellite": "set ANBENCH_SATELLITE_DIR to the folder with satellite_train.npy or satellite_train.beton "
                     "and satellite_test.npy or satellite_test.beton",
        "deepsea": "set ANBENCH_DEEPSEA_DIR to the folder with deepsea_filtered.npz",
    }
    assert listing["tpu_xla"]["availability"] == {"devices": {"tpu": "torch_xla is not installed"}}
    board = ("xir is not installed here; it comes with the Vitis AI board image (PetaLinux/Vitis AI runtime); "
             "to measure a board from this machine give --host USER@BOARD")
    docker = ("pytorch_nndct (vai_q_pytorch, the Vitis AI quantizer) is not installed; it comes with the Vitis AI "
              "docker's `vitis-ai-pytorch` conda environment")
    targets = ["kv260", "u250", "u280", "u50", "vck190", "vck5000", "zcu102", "zcu104"]
    assert listing["fpga_dpu"]["availability"] == {
        "devices": {"zcu102": board, "vck190": board}, "compilers": {"vitis-ai": docker},
        "targets": {target: docker for target in targets},
    }
    assert listing["fpga_dpu"]["provides"]["targets"] == targets
    cuda = listing["gpu_cuda"]["availability"]["devices"]["cuda"]
    assert cuda in (None, "no CUDA device visible (torch.cuda.is_available() is False)")
