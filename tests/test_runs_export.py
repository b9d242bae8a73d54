"""Repeated runs through import, `results` and export: every record kept and written back,
anbench's own results attached as documented in anbench.export, CSV rows per run, and the
released dataset end to end when ../shared is there."""

import csv
import json
import tarfile
from pathlib import Path

import pytest

import anb_records as anb
from anbench.pending import write_pending
from anbench.searchspace import Architecture, named
from anbench.store import StageResult, Store

ARCH_0 = Architecture.from_record(anb.ARCH_0)
RELEASED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "accel-nasbench" / "anb_dataset_jsons.tar.gz"
OWN_PROVENANCE = {"host": {"hostname": "lab-1"}}


def own_measurement(arch, device, throughput, created_at="2025-01-01T00:00:00.000+00:00", run=""):
    return StageResult(arch.id, "measure", device, {"batch_size": 8},
                       {"throughput_ips_mean": throughput, "throughput_ips_std": 0.5}, dict(OWN_PROVENANCE),
                       created_at=created_at, run=run)


def without(record, devices):
    out = anb.copy(record)
    for key in [k for k in out["platform_perf"] if k.split("_", 1)[1] in devices]:
        del out["platform_perf"][key]
    out.pop("anbench", None)
    return out


@pytest.fixture
def repeated(run_cli, store_path, tmp_path):
    """result_0 and result_1711: one architecture, two runs with different values."""
    folder = anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0, 1711: anb.RESULT_1711, 2: anb.RESULT_2})
    assert run_cli("import", folder).exit_code == 0
    return folder


def test_an_own_measurement_goes_into_every_record_of_its_architecture(run_cli, store_path, repeated, tmp_path):
    with Store.open(store_path) as store:
        store.add_result(own_measurement(ARCH_0, "cpu", 50.0, "2025-01-01T00:00:00.000+00:00"))
        assert store.add_result(own_measurement(ARCH_0, "cpu", 52.0, "2025-02-01T00:00:00.000+00:00", run="seed=2"))
    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    exported = anb.load_dir(tmp_path / "out")
    assert sorted(exported) == ["result_0.json", "result_1711.json", "result_2.json"]
    for name, original in (("result_0.json", anb.RESULT_0), ("result_1711.json", anb.RESULT_1711)):
        record = exported[name]
        assert record["platform_perf"]["throughput_cpu"] == {"throughput_mean": 52.0, "throughput_std": 0.5}
        assert [e["target"] for e in record["anbench"]["results"]] == ["cpu"]
        anb.assert_same_json(without(record, {"cpu"}), original, name)  # the record's own values untouched
    anb.assert_same_json(exported["result_2.json"], anb.RESULT_2)


def test_an_own_result_that_no_record_lacks_gets_a_record_of_its_own(run_cli, store_path, repeated, tmp_path):
    with Store.open(store_path) as store:
        store.add_result(own_measurement(ARCH_0, "a100", 9999.0))  # both records hold a100 already
    result = run_cli("export", "--out", tmp_path / "out")
    assert result.exit_code == 0 and "4 records of 2 architectures" in result.output
    exported = anb.load_dir(tmp_path / "out")
    anb.assert_same_json(exported["result_0.json"], anb.RESULT_0)
    anb.assert_same_json(exported["result_1711.json"], anb.RESULT_1711)
    own = exported["result_1712.json"]  # after the largest imported index
    assert own["architecture"] == anb.ARCH_0 and own["metrics"] == {"val_top1": None, "val_top5": None, "train_time": None}
    assert own["platform_perf"]["throughput_a100"] == {"throughput_mean": 9999.0, "throughput_std": 0.5}
    assert own["model_info"] == anb.RESULT_0["model_info"]
    assert own["anbench"]["results"][0]["provenance"] == OWN_PROVENANCE


def test_an_own_training_fills_a_record_without_one(run_cli, store_path, tmp_path):
    untrained = anb.copy(anb.RESULT_2)
    untrained["metrics"] = {"val_top1": None, "val_top5": None, "train_time": None}
    assert run_cli("import", anb.write_dir(tmp_path / "anb", {4: untrained, 2: anb.RESULT_2})).exit_code == 0
    arch = Architecture.from_record(anb.RESULT_2["architecture"])
    with Store.open(store_path) as store:
        store.add_result(StageResult(arch.id, "train", "imagenet", {"epochs": 1},
                                     {"val_top1": 1.5, "val_top5": 4.5, "train_time_s": 9.0}, {}))
    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    exported = anb.load_dir(tmp_path / "out")
    assert sorted(exported) == ["result_2.json", "result_4.json"]  # the own training found a record lacking it
    assert exported["result_4.json"]["metrics"] == {"val_top1": 1.5, "val_top5": 4.5, "train_time": 9.0}
    anb.assert_same_json(exported["result_2.json"], anb.RESULT_2)


def test_csv_has_one_row_per_run_told_apart_by_the_run_column(run_cli, store_path, repeated, tmp_path):
    with Store.open(store_path) as store:
        store.add_architecture(named("smallest"), {"source": "sample"})
        store.add_result(own_measurement(named("smallest"), "cpu", 300.0))
    assert run_cli("export", "--format", "csv", "--out", tmp_path / "t").exit_code == 0
    with open(tmp_path / "t" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["run"]) for r in rows] == [(ARCH_0.id, "result_0.json"), (ARCH_0.id, "result_1711.json"),
                                                   (named("tpuv3-a").id, "result_2.json"), (named("smallest").id, "")]
    assert [r["val_top1"] for r in rows[:2]] == ["64.118", "62.054"]
    assert rows[3]["throughput_ips_cpu_mean"] == "300.0"


def test_results_lists_repeats_and_summarises_large_stores(run_cli, store_path, repeated):
    listing = run_cli("results", "--stage", "train")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].split()[:5] == ["id", "architecture", "stage", "target", "run"]
    assert sum("result_0.json" in l or "result_1711.json" in l for l in lines) == 2
    assert lines[-1] == "17 results: 2 architectures, 3 runs (1 architecture with repeated runs)"

    with Store.open(store_path) as store:  # many results: a summary by default
        store.add_results([own_measurement(ARCH_0, "cpu", 40.0 + i, run=f"seed={i}") for i in range(60)])
    summary = run_cli("results")
    assert summary.exit_code == 0
    out = summary.output.splitlines()
    assert out[0].split() == ["stage", "target", "results", "architectures", "repeated", "runs", "newest"]
    assert any(l.split()[:5] == ["measure", "cpu", "60", "1", "59"] for l in out)
    assert "77 results: 2 architectures, 61 runs (1 architecture with repeated runs)" in summary.output
    assert "--limit N" in out[-1]
    limited = run_cli("results", "--device", "cpu", "--limit", "3")
    assert limited.exit_code == 0 and sum(" cpu " in l for l in limited.output.splitlines()) == 3
    by_arch = run_cli("results", "--arch", named("tpuv3-a").id[:6], "--format", "json")
    rows = json.loads(by_arch.output)
    assert {r["arch_id"] for r in rows} == {named("tpuv3-a").id} and {r["run"] for r in rows} == {"result_2.json"}
    assert len(json.loads(run_cli("results", "--all", "--format", "json").output)) == 77
    only = run_cli("results", "--summary").output.splitlines()
    assert only[0].split()[:2] == ["stage", "target"] and only[-1].startswith("77 results")


def test_results_imported_before_runs_existed_are_not_imported_twice(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", {2: anb.RESULT_2})
    arch = Architecture.from_record(anb.RESULT_2["architecture"])
    with Store.open(store_path) as store:  # what schema 1 stored: run "" and the file in the provenance
        store.add_architecture(arch, {"source": "anb-json", "file": "result_2.json", "index": 2,
                                      "model_info": anb.RESULT_2["model_info"]})
        store.add_result(StageResult(arch.id, "train", "imagenet", {"source": "anb-json"},
                                     {"val_top1": 67.32, "val_top5": 87.7, "train_time_s": 2391.45},
                                     {"imported_from": "result_2.json"}, source="anb-json"))
    again = run_cli("import", folder)
    assert again.exit_code == 0 and "trainings added: 0, measurements added: 4 (1 already stored)" in again.output
    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    anb.assert_same_json(anb.load_dir(tmp_path / "out")["result_2.json"], anb.RESULT_2)


def test_pending_side_files_are_imported_back(run_cli, store_path, tmp_path):
    arch = named("smallest")
    side = write_pending(tmp_path / "gone.db", arch, {"source": "measure"},
                         own_measurement(arch, "cpu", 10.0), "database is locked")
    first = run_cli("import", "--format", "pending", side)
    assert first.exit_code == 0 and "pending results: 1 new, 0 already stored" in first.output
    assert "pending results: 0 new, 1 already stored" in run_cli("import", "--format", "pending", side.parent).output


def _side_file(tmp_path, name, edit):
    side = write_pending(tmp_path / "gone.db", named("smallest"), {"source": "measure"},
                         own_measurement(named("smallest"), "cpu", 10.0), "database is locked")
    text = edit(side.read_text())
    bad = tmp_path / "bad" / name
    bad.parent.mkdir(exist_ok=True)
    bad.write_text(text)
    return bad


@pytest.mark.parametrize("name,edit,expected", [
    ("nested.json", lambda t: t.replace('"hostname": "lab-1"', '"hostname": ' + "[" * 100_000 + "]" * 100_000), "nested deeper"),
    ("nan.json", lambda t: t.replace('"throughput_ips_mean": 10.0', '"throughput_ips_mean": NaN'), "NaN is not a finite"),
    ("negative.json", lambda t: t.replace('"throughput_ips_mean": 10.0', '"throughput_ips_mean": -10.0'),
     "metrics.throughput_ips_mean must be a number > 0, got -10.0"),
], ids=["nested", "nan", "negative"])
def test_a_hostile_side_file_is_one_line_and_stores_nothing(run_cli, store_path, tmp_path, name, edit, expected):
    bad = _side_file(tmp_path, name, edit)
    assert bad.read_text() != _side_file(tmp_path, "plain.json", lambda t: t).read_text()
    taken = run_cli("import", "--format", "pending", bad)
    assert taken.exit_code == 2 and expected in taken.stderr and len(taken.stderr.splitlines()) == 1, taken.stderr
    with Store.open(store_path) as store:
        assert store.count_results() == 0


def test_a_nan_result_is_kept_as_null_in_its_side_file_and_never_exported_as_nan(run_cli, store_path, tmp_path):
    arch = named("smallest")
    result = StageResult(arch.id, "train", "synthetic", {}, {"val_top1": 50.0, "val_loss": float("nan")}, {})
    side = write_pending(tmp_path / "gone.db", arch, {"source": "train"}, result, "database is locked")
    assert json.loads(side.read_text())["result"]["metrics"] == {"val_top1": 50.0, "val_loss": None}
    assert run_cli("import", "--format", "pending", side).exit_code == 0
    with Store.open(store_path) as store:  # a NaN stored by other means is refused at export, one line
        store.add_result(StageResult(arch.id, "measure", "cpu", {}, {"throughput_ips_mean": float("nan")}, {}))
    exported = run_cli("export", "--out", tmp_path / "out")
    assert exported.exit_code == 2 and "not a finite number" in exported.stderr, exported.output + exported.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(not RELEASED.exists(), reason="the released dataset lies in ../shared (absent on a fresh clone)")
def test_the_released_dataset_comes_back_byte_for_byte(run_cli, store_path, tmp_path):
    with tarfile.open(RELEASED) as tar:
        tar.extractall(tmp_path / "src", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    folder = next((tmp_path / "src").rglob("result_0.json")).parent
    imported = run_cli("import", folder)
    assert imported.exit_code == 0, imported.stderr
    assert "records read: 5138" in imported.output
    assert "architectures: 5125 new, 13 with repeated records" in imported.output
    assert "trainings added: 5138" in imported.output
    assert "already stored" in run_cli("import", folder).output.splitlines()[2]

    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    originals = sorted(p.name for p in folder.glob("result_*.json"))
    assert len(originals) == 5138
    assert sorted(p.name for p in (tmp_path / "out").glob("result_*.json")) == originals
    different = [n for n in originals if (folder / n).read_bytes() != (tmp_path / "out" / n).read_bytes()]
    assert different == []
    repeats = {f"result_{i}.json" for i in range(443, 456)}
    first = json.loads((folder / "result_0.json").read_text())
    again = json.loads((folder / "result_443.json").read_text())
    assert first["architecture"] == again["architecture"] and first["metrics"] != again["metrics"]
    assert repeats <= set(originals)

    summary = run_cli("results")
    assert "35878 results: 5125 architectures, 5138 runs (13 architectures with repeated runs)" in summary.output
    assert len(summary.output.splitlines()) < 20

    assert run_cli("export", "--format", "csv", "--out", tmp_path / "csv").exit_code == 0
    with open(tmp_path / "csv" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5138 and len({(r["id"], r["run"]) for r in rows}) == 5138


def test_an_edited_record_imported_again_is_kept_beside_the_first(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", {2: anb.RESULT_2, 10: anb.RESULT_10})
    assert run_cli("import", folder).exit_code == 0
    edited = anb.copy(anb.RESULT_2)
    edited["metrics"]["val_top1"] = 70.0
    (folder / "result_2.json").write_text(json.dumps(edited))
    again = run_cli("import", folder)
    assert again.exit_code == 0
    assert "differ from the stored record of the same file and architecture: 1, kept as runs of their own " \
           "(result_2.json@" in again.output
    assert "trainings added: 1, measurements added: 4 (7 already stored)" in again.output
    assert "trainings added: 0, measurements added: 0 (12 already stored)" in run_cli("import", folder).output
    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    exported = anb.load_dir(tmp_path / "out")
    assert sorted(exported) == ["result_10.json", "result_11.json", "result_2.json"]
    anb.assert_same_json(exported["result_2.json"], anb.RESULT_2)  # the first import keeps its name
    anb.assert_same_json(exported["result_11.json"], edited)  # the edit follows the largest index


def _null_a100(record):
    record["platform_perf"]["throughput_a100"] = {"throughput_mean": None, "throughput_std": None}


def _add_zcu102(record):
    record["platform_perf"]["latency_zcu102"] = {"latency_mean": 3.25, "latency_std": 0.0}


@pytest.mark.parametrize("edit", [_null_a100, _add_zcu102], ids=["a-value-set-to-null", "a-value-added"])
def test_an_edit_that_drops_or_adds_a_value_is_kept_beside_the_first_too(run_cli, store_path, tmp_path, edit):
    # only values the two share differ in neither case: the whole record must be compared
    folder = anb.write_dir(tmp_path / "anb", {2: anb.RESULT_2})
    assert run_cli("import", folder).exit_code == 0
    edited = anb.copy(anb.RESULT_2)
    edit(edited)
    (folder / "result_2.json").write_text(json.dumps(edited))
    again = run_cli("import", folder)
    assert again.exit_code == 0 and "kept as runs of their own (result_2.json@" in again.output, again.output
    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    exported = anb.load_dir(tmp_path / "out")
    assert sorted(exported) == ["result_2.json", "result_3.json"]
    anb.assert_same_json(exported["result_2.json"], anb.RESULT_2)
    anb.assert_same_json(exported["result_3.json"], edited)


def test_result_keys_keep_their_definition_when_computed_in_bulk(tmp_path):
    """add_results encodes shared settings once; the keys must stay sha256(canonical JSON of the parts)."""
    import hashlib
    import random

    from anbench.store import result_key

    def reference(arch_id, stage, target, settings, run=""):
        parts = [arch_id, stage, target, settings] + ([run] if run else [])
        return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    rng = random.Random(7)
    alphabet = "ab_-.:=/ \"\\\u00e9\u2603\U0001F600\n"
    word = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))  # noqa: E731
    for _ in range(500):
        settings = {word(): rng.choice([1, 2.5, None, True, word(), [1, {"b": 2, "a": 1}]]) for _ in range(3)}
        args = (word(), word(), word(), settings, rng.choice(["", word()]))
        assert result_key(*args) == reference(*args)
    with Store.open(tmp_path / "s.db") as store:
        arch = named("smallest")
        store.add_architecture(arch)
        batch = [StageResult(arch.id, "measure", "cpu", {"z": 1, "a": [2.5]}, {"x": i}, {}, run=f"seed={i}")
                 for i in range(3)]
        assert store.add_results(batch) == 3
        assert [r.key for r in store.results()] == [reference(arch.id, "measure", "cpu", {"z": 1, "a": [2.5]}, f"seed={i}")
                                                    for i in range(3)]
        assert store.has_key(batch[0].key)
