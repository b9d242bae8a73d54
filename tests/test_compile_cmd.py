"""``anbench compile`` through a registered compiler plugin."""

import json

import pytest

from anbench import hookimpl
from anbench.plugin_types import CompiledArtifact
from anbench.plugins import get_host, reset_host
from anbench.store import Store
from anbench.testing import register_test_plugin


class RecordingCompiler:
    """Writes a real artifact file per request, like a compiler's output folder."""

    name = "recorder"
    summary = "test compiler that writes the request as its artifact"
    targets = ("testboard",)

    def __init__(self, reason=None):
        self.reason = reason

    def availability(self):
        return self.reason

    def compile(self, request):
        request.workdir.mkdir(parents=True, exist_ok=True)
        artifact = request.workdir / "model.json"
        artifact.write_text(json.dumps({"arch": request.arch.to_record(), "target": request.target}))
        return CompiledArtifact(artifact, request.target, {"compiler": "recorder", "arch_id": request.arch.id})


@pytest.fixture
def compilers():
    reset_host()

    def install(compiler):
        class Plugin:
            @hookimpl
            def register_compilers(self, register):
                register(compiler)

        register_test_plugin(get_host(), Plugin(), name=f"compiler-{compiler.name}")
        return compiler

    yield install
    reset_host()


def test_compile_writes_the_artifact_and_stores_it(run_cli, store_path, tmp_path, compilers):
    compilers(RecordingCompiler())
    result = run_cli("compile", "--target", "testboard", "--arch", "smallest", "--workdir", tmp_path / "art",
                     "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    artifact = tmp_path / "art" / row["id"] / "testboard" / "model.json"
    assert row["artifact"] == str(artifact) and json.loads(artifact.read_text())["target"] == "testboard"
    with Store.open(store_path) as store:
        (stored,) = store.results(stage="compile", target="testboard")
    assert stored.metrics["fingerprint"] == {"compiler": "recorder", "arch_id": row["id"]}
    assert stored.settings["compiler"] == "recorder" and stored.provenance["anbench_version"]


def test_compile_with_an_unavailable_toolchain_is_one_line(run_cli, compilers):
    compilers(RecordingCompiler(reason="vai_c_xir not found on PATH"))
    result = run_cli("compile", "--target", "testboard", "--arch", "smallest")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: compiler 'recorder' for target 'testboard' is not available here: "
                                     "vai_c_xir not found on PATH")
