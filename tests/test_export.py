"""Export to Accel-NASBench JSON and CSV, and the `results` listing."""

import csv
import json

import pytest

from anbench.errors import AnbenchError
from anbench.export import export_anb_json, export_csv, parse_device_specs
from anbench.searchspace import RECORD_KEYS, named
from anbench.store import StageResult, Store

B0 = named("efficientnet-b0")
SMALLEST = named("smallest")
ZCU = named("zcu102-a")

ANB_PERF_KEYS = ["latency_zcu102", "latency_vck190", "throughput_a100", "throughput_3090", "throughput_tpuv2",
                 "throughput_tpuv3", "throughput_zcu102", "throughput_vck190"]
PROV = {"anbench_version": "0.1.0", "host": {"hostname": "bench-1"}}


def measurement(arch, device, created_at, throughput=None, latency=None, **settings):
    metrics = {}
    if throughput is not None:
        metrics.update(throughput_ips_mean=throughput[0], throughput_ips_std=throughput[1])
    if latency is not None:
        metrics.update(latency_ms_mean=latency[0], latency_ms_std=latency[1])
    metrics["samples"] = {"throughput_ips": [1.0, 2.0]}
    return StageResult(arch.id, "measure", device, {"batch_size": 32, **settings}, metrics, dict(PROV),
                       created_at=created_at)


def training(arch, created_at, top1, dataset="imagenet", **settings):
    return StageResult(arch.id, "train", dataset, {"epochs": 16, **settings},
                       {"val_top1": top1, "val_top5": top1 + 20.0, "train_time_s": 1500.5, "best_epoch": 15},
                       dict(PROV), created_at=created_at)


@pytest.fixture
def store(store_path):
    with Store.open(store_path) as s:
        for arch in (B0, SMALLEST, ZCU):
            s.add_architecture(arch, {"source": "sample", "seed": 1})
        yield s


def test_records_have_the_released_layout_and_newest_results(store, tmp_path):
    store.add_result(training(B0, "2024-01-01T00:00:00.000+00:00", 70.0))
    store.add_result(training(B0, "2024-02-01T00:00:00.000+00:00", 71.5, epochs=450))  # newer wins
    store.add_result(measurement(B0, "a100", "2024-01-01T00:00:00.000+00:00", throughput=(2.0, 2.0), batch_size=16))
    store.add_result(measurement(B0, "a100", "2024-01-01T00:00:00.000+00:00", throughput=(9000.5, 2.5)))  # tie: later row
    store.add_result(measurement(B0, "a100", "2023-01-01T00:00:00.000+00:00", throughput=(1.0, 1.0), batch_size=64))
    store.add_result(measurement(B0, "zcu102", "2024-01-01T00:00:00.000+00:00", throughput=(441.0, None),
                                 latency=(5.0, None)))
    store.add_result(measurement(B0, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(55.5, 0.5),
                                 latency=(20.25, 0.75)))
    store.add_result(measurement(SMALLEST, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(300.0, 3.0)))

    summary = export_anb_json(store, tmp_path / "out")
    assert summary.files == 3 and summary.trained == 1
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["anbench-export.json", "result_0.json", "result_1.json", "result_2.json"]  # no temp files left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anbench.db", "anbench.db-shm", "anbench.db-wal", "out"]
    b0 = json.loads((tmp_path / "out" / "result_0.json").read_text())
    assert list(b0) == ["architecture", "metrics", "model_info", "platform_perf", "anbench"]
    assert list(b0["architecture"].items()) == list(B0.to_record().items())
    assert list(b0["architecture"]) == list(RECORD_KEYS)
    assert b0["metrics"] == {"val_top1": 71.5, "val_top5": 91.5, "train_time": 1500.5}
    assert list(b0["metrics"]) == ["val_top1", "val_top5", "train_time"]
    assert b0["model_info"] == {"macs": 415.145024, "params": 5.288548}
    assert list(b0["model_info"]) == ["macs", "params"]
    perf = b0["platform_perf"]
    assert list(perf) == ANB_PERF_KEYS + ["latency_cpu", "throughput_cpu"]
    assert perf["throughput_a100"] == {"throughput_mean": 9000.5, "throughput_std": 2.5}
    assert list(perf["throughput_a100"]) == ["throughput_mean", "throughput_std"]
    assert perf["latency_zcu102"] == {"latency_mean": 5.0, "latency_std": None}
    assert perf["throughput_zcu102"] == {"throughput_mean": 441.0, "throughput_std": None}
    assert perf["throughput_tpuv3"] == {"throughput_mean": None, "throughput_std": None}
    assert perf["latency_vck190"] == {"latency_mean": None, "latency_std": None}
    assert perf["latency_cpu"] == {"latency_mean": 20.25, "latency_std": 0.75}
    assert perf["throughput_cpu"] == {"throughput_mean": 55.5, "throughput_std": 0.5}

    provenance = b0["anbench"]
    assert provenance["id"] == B0.id
    by_target = {(e["stage"], e["target"]): e for e in provenance["results"]}
    assert set(by_target) == {("train", "imagenet"), ("measure", "a100"), ("measure", "zcu102"), ("measure", "cpu")}
    assert by_target[("train", "imagenet")]["settings"] == {"epochs": 450}
    assert by_target[("measure", "a100")]["settings"]["batch_size"] == 32
    assert by_target[("measure", "cpu")]["provenance"] == PROV

    smallest = json.loads((tmp_path / "out" / "result_1.json").read_text())
    assert smallest["metrics"] == {"val_top1": None, "val_top5": None, "train_time": None}
    assert list(smallest["platform_perf"]) == ANB_PERF_KEYS + ["throughput_cpu"]  # only what cpu measured
    untouched = json.loads((tmp_path / "out" / "result_2.json").read_text())
    assert list(untouched) == ["architecture", "metrics", "model_info", "platform_perf"]  # nothing produced: no key
    assert all(v == {k.split("_")[0] + "_mean": None, k.split("_")[0] + "_std": None}
               for k, v in untouched["platform_perf"].items())
    assert untouched["model_info"] == {"macs": 674.016864, "params": 8.018872}


def test_device_selection_and_renaming(store, tmp_path):
    store.add_result(measurement(B0, "cuda", "2024-01-01T00:00:00.000+00:00", throughput=(8000.0, 4.0)))
    store.add_result(measurement(B0, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(50.0, 1.0)))
    export_anb_json(store, tmp_path / "out", devices=parse_device_specs(["cuda=a100"]))
    record = json.loads((tmp_path / "out" / "result_0.json").read_text())
    assert list(record["platform_perf"]) == ANB_PERF_KEYS  # cpu not selected
    assert record["platform_perf"]["throughput_a100"] == {"throughput_mean": 8000.0, "throughput_std": 4.0}
    (entry,) = record["anbench"]["results"]
    assert (entry["target"], entry["exported_as"]) == ("cuda", "a100")
    with pytest.raises(AnbenchError, match="NAME=ALIAS"):
        parse_device_specs(["cuda=a 100"])


def test_device_specs_refuse_a_repeated_name_and_a_shared_alias(run_cli):
    assert parse_device_specs(["cuda=a100", "cpu"]) == {"cuda": "a100", "cpu": "cpu"}
    with pytest.raises(AnbenchError, match="both be exported as '3090'"):
        parse_device_specs(["a100=3090", "3090"])  # a100 would be lost behind 3090
    with pytest.raises(AnbenchError, match="--device a100 is given twice"):
        parse_device_specs(["a100=x", "a100=y"])
    refused = run_cli("export", "--out", "out", "--device", "a100=3090", "--device", "3090")
    assert refused.exit_code == 2 and refused.output.count("error:") == 1


def test_training_results_can_be_limited_to_one_dataset(store, tmp_path):
    store.add_result(training(B0, "2024-01-01T00:00:00.000+00:00", 70.0, dataset="imagenet"))
    store.add_result(training(B0, "2024-03-01T00:00:00.000+00:00", 99.0, dataset="synthetic"))
    export_anb_json(store, tmp_path / "all")
    export_anb_json(store, tmp_path / "imagenet", dataset="imagenet")
    assert json.loads((tmp_path / "all" / "result_0.json").read_text())["metrics"]["val_top1"] == 99.0
    assert json.loads((tmp_path / "imagenet" / "result_0.json").read_text())["metrics"]["val_top1"] == 70.0


def test_indices_keep_imported_ones_and_follow_the_largest(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        store.add_architecture(B0, {"source": "sample"})
        store.add_architecture(SMALLEST, {"source": "anb-json", "file": "result_17.json", "index": 17,
                                          "model_info": {"macs": 57.030736, "params": 1.798072}})
        store.add_architecture(ZCU, {"source": "anb-json", "file": "result_17.json", "index": 17,  # another folder
                                     "model_info": {"macs": 674.016864, "params": 8.018872}})
        store.add_architecture(named("vck190-a"), {"source": "anb-json", "file": "result_3.json", "index": 3,
                                                   "model_info": {"macs": 1.0, "params": 2.0}})
        export_anb_json(store, tmp_path / "out")
    ids = {p.name: json.loads(p.read_text()) for p in (tmp_path / "out").glob("result_*.json")}
    assert sorted(ids) == ["result_17.json", "result_18.json", "result_19.json", "result_3.json"]
    assert ids["result_17.json"]["architecture"] == SMALLEST.to_record()
    assert ids["result_18.json"]["architecture"] == B0.to_record()  # others after the largest, insertion order
    assert ids["result_19.json"]["architecture"] == ZCU.to_record()  # a clashing index moves
    assert ids["result_3.json"]["model_info"] == {"macs": 1.0, "params": 2.0}  # the record's own values


def test_an_earlier_export_is_replaced_only_with_overwrite(store, tmp_path):
    out = tmp_path / "out"
    export_anb_json(store, out)
    with pytest.raises(AnbenchError, match="--overwrite") as excinfo:
        export_anb_json(store, out)
    assert "\n" not in str(excinfo.value)
    store.add_result(measurement(B0, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(10.0, 1.0)))
    summary = export_anb_json(store, out, overwrite=True)
    assert summary.replaced == 3
    assert sorted(p.name for p in out.iterdir()) == ["anbench-export.json", "result_0.json", "result_1.json",
                                                     "result_2.json"]
    assert "throughput_cpu" in json.loads((out / "result_0.json").read_text())["platform_perf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anbench.db", "anbench.db-shm", "anbench.db-wal", "out"]


def test_files_an_export_did_not_write_are_never_removed(store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(AnbenchError, match="notes.txt, which no anbench export wrote"):
        export_anb_json(store, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "notes.txt").unlink()
    export_anb_json(store, out)  # an empty folder is fine
    (out / "result_99.json").write_text("{}")  # added after the export: not anbench's to remove
    with pytest.raises(AnbenchError, match="result_99.json besides an earlier export"):
        export_anb_json(store, out, overwrite=True)
    (out / "result_99.json").unlink()
    (out / "result_1.json").write_text("{}")  # edited after the export
    with pytest.raises(AnbenchError, match="result_1.json changed after anbench exported it"):
        export_anb_json(store, out, overwrite=True)
    assert (out / "result_1.json").read_text() == "{}"


@pytest.mark.parametrize("fmt", ["anb-json", "csv"])
def test_the_folder_is_checked_once_and_before_anything_is_rendered(store, tmp_path, monkeypatch, fmt):
    from anbench import export, export_dir

    checks, collected, rendered = [], [], []
    real_check, real_collect, real_costs = export_dir.check_target, export.collect_records, export.task_costs
    monkeypatch.setattr(export_dir, "check_target", lambda *args: checks.append(args) or real_check(*args))
    monkeypatch.setattr(export, "collect_records", lambda *args: collected.append(args) or real_collect(*args))
    monkeypatch.setattr(export, "task_costs", lambda train: rendered.append(train) or real_costs(train))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(AnbenchError, match="no anbench export wrote"):
        export.export(store, fmt, out)
    assert len(checks) == 1 and collected == [] and rendered == []  # refused before any store read
    (out / "notes.txt").unlink()
    export.export(store, fmt, out)
    assert len(checks) == 2 and len(collected) == 1 and len(rendered) == 3  # one check more; a record each


def test_csv_has_one_row_per_record_with_device_columns(store, tmp_path):
    store.add_result(training(B0, "2024-01-01T00:00:00.000+00:00", 71.25))
    store.add_result(measurement(B0, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(55.5, 0.5), latency=(20.0, 1.0)))
    store.add_result(measurement(SMALLEST, "a100", "2024-01-01T00:00:00.000+00:00", throughput=(0.1 + 0.2, None)))
    export_csv(store, tmp_path / "out")
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    assert header == ["id", "run", *RECORD_KEYS, "params_m", "macs_m", "val_top1", "val_top5", "train_time_s",
                      "throughput_ips_a100_mean", "throughput_ips_a100_std", "latency_ms_cpu_mean", "latency_ms_cpu_std",
                      "throughput_ips_cpu_mean", "throughput_ips_cpu_std"]
    assert [r["id"] for r in rows] == [B0.id, SMALLEST.id, ZCU.id]
    assert rows[0]["params_m"] == "5.288548" and rows[0]["macs_m"] == "415.145024"
    assert rows[0]["val_top1"] == "71.25" and rows[0]["train_time_s"] == "1500.5"
    assert rows[0]["throughput_ips_cpu_mean"] == "55.5" and rows[0]["throughput_ips_a100_mean"] == ""
    assert float(rows[1]["throughput_ips_a100_mean"]) == 0.1 + 0.2 and rows[1]["throughput_ips_a100_std"] == ""
    assert rows[2]["block0_se"] == "False" and rows[2]["val_top1"] == ""


def test_export_cli_writes_and_refuses_overwrites(run_cli, store, tmp_path):
    store.add_result(measurement(B0, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(10.0, 1.0)))
    store.close()
    out = tmp_path / "ds"
    result = run_cli("export", "--format", "anb-json", "--out", out)
    assert result.exit_code == 0, result.output
    assert "wrote 3 result files" in result.output
    assert len(list(out.glob("result_*.json"))) == 3
    again = run_cli("export", "--format", "anb-json", "--out", out)
    assert again.exit_code == 2
    assert again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    assert run_cli("export", "--format", "anb-json", "--out", out, "--overwrite").exit_code == 0
    csv_run = run_cli("export", "--format", "csv", "--out", tmp_path / "tables", "--device", "cpu")
    assert csv_run.exit_code == 0, csv_run.output
    assert "throughput_ips_cpu_mean" in (tmp_path / "tables" / "results.csv").read_text()


def test_export_of_an_empty_store_is_a_user_error(run_cli, tmp_path):
    result = run_cli("export", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "holds no architectures" in result.stderr


def test_results_lists_architectures_then_results(run_cli, store, tmp_path):
    store.close()
    listing = run_cli("results")
    assert listing.exit_code == 0, listing.output
    assert "no results yet; 3 stored architectures" in listing.output
    assert B0.id in listing.output and "415.145024" in listing.output and "5.288548" in listing.output
    assert json.loads(run_cli("results", "--format", "json").output) == []

    with Store.open(tmp_path / "anbench.db") as s:
        s.add_result(measurement(B0, "cpu", "2024-01-01T00:00:00.000+00:00", throughput=(55.5, 0.5), latency=(20.0, 1.0)))
        s.add_result(training(SMALLEST, "2024-01-02T00:00:00.000+00:00", 60.0))
    table = run_cli("results")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["id", "architecture", "stage", "target", "run", "metrics", "source", "created_at"]
    assert lines[-1] == "2 results: 2 architectures, 2 runs"
    assert any(B0.id in l and B0.compact in l and "throughput_ips_mean=55.5" in l and "anbench" in l for l in lines)
    assert any(SMALLEST.id in l and "val_top1=60" in l for l in lines)
    only = run_cli("results", "--stage", "measure", "--device", "cpu", "--format", "json")
    (row,) = json.loads(only.output)
    assert (row["arch_id"], row["stage"], row["target"]) == (B0.id, "measure", "cpu")
    assert row["metrics"]["latency_ms_mean"] == 20.0 and row["provenance"] == PROV
    assert row["architecture"] == B0.to_record()
    none = run_cli("results", "--device", "tpuv3")
    assert none.exit_code == 0 and "no results for target tpuv3" in none.output


def test_results_on_an_empty_store(run_cli):
    result = run_cli("results")
    assert result.exit_code == 0 and "is empty" in result.output


def test_an_out_path_that_is_a_file_is_one_line(run_cli, store, tmp_path):
    store.close()
    blocker = tmp_path / "plain"
    blocker.write_text("x")
    result = run_cli("export", "--out", blocker)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: --out {blocker} exists and is not a directory"]
