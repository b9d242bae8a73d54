"""Export of training results on tasks with their own metric and network (the 1-D NAS-Bench-360 tasks)."""

import csv
import json

import pytest

from anbench.costs import count_costs, count_costs_1d
from anbench.export import export_anb_json, export_csv
from anbench.searchspace import named
from anbench.seq1d import Seq1dShape, to_seq1d
from anbench.store import StageResult, Store

ARCH = to_seq1d(named("efficientnet-b0"))
IMAGE_ARCH = named("smallest")
ECG = Seq1dShape(1, 1000, 4, stem_stride=2)
PROV = {"anbench_version": "0.1.0"}


def ecg_training(created_at="2024-01-01T00:00:00.000+00:00", f1=0.625):
    costs = count_costs_1d(ARCH, ECG)
    metrics = {
        "verdict": "VALID", "metric_name": "macro_f1", "metric": f1, "val_top1": None, "val_top5": None,
        "val_macro_f1": f1, "val_record_top1": 80.0, "val_window_top1": 75.5, "val_records": 5.0,
        "val_loss": 0.9, "val_samples": 11, "metric_epochs": [0], "metric_split": "test",
        "metric_selection": "final_epoch", "train_time_s": 12.5, "params_m": costs.params_m, "macs_m": costs.macs_m,
        "cost_input_shape": [1, 1000], "curves": [{"epoch": 0, "val_macro_f1": f1}],
    }
    return StageResult(ARCH.id, "train", "ecg", {"epochs": 1, "optimizer": "adam"}, metrics, dict(PROV),
                       created_at=created_at)


@pytest.fixture
def store(store_path):
    with Store.open(store_path) as s:
        s.add_architecture(ARCH, {"source": "sample"})
        s.add_architecture(IMAGE_ARCH, {"source": "sample"})
        s.add_result(ecg_training())
        s.add_result(StageResult(IMAGE_ARCH.id, "train", "imagenet", {"epochs": 16},
                                 {"val_top1": 60.0, "val_top5": 80.0, "train_time_s": 100.0, "val_loss": 1.0},
                                 dict(PROV), created_at="2024-01-01T00:00:00.000+00:00"))
        yield s


def test_anb_json_record_holds_the_task_metric_its_origin_and_the_tasks_own_costs(store, tmp_path):
    export_anb_json(store, tmp_path / "out")
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("result_*.json"))]
    ecg = next(r for r in records if r["architecture"] == ARCH.to_record())
    assert ecg["metrics"] == {"val_top1": None, "val_top5": None, "train_time": 12.5, "macro_f1": 0.625,
                              "record_top1": 80.0, "window_top1": 75.5, "records": 5.0}
    own = count_costs_1d(ARCH, ECG)
    assert ecg["model_info"] == {"macs": own.macs_m, "params": own.params_m}
    assert own.macs_m != count_costs(ARCH).macs_m  # not the ImageNet network's
    assert ecg["anbench"]["results"][0]["metric"] == {"name": "macro_f1", "split": "test",
                                                      "selection": "final_epoch", "epochs": [0]}
    image = next(r for r in records if r["architecture"] == IMAGE_ARCH.to_record())
    assert image["metrics"] == {"val_top1": 60.0, "val_top5": 80.0, "train_time": 100.0}
    assert image["model_info"]["macs"] == pytest.approx(count_costs(IMAGE_ARCH).macs_m)
    assert "metric" not in image["anbench"]["results"][0]


def test_csv_adds_one_column_per_task_metric(store, tmp_path):
    store.add_result(StageResult(ARCH.id, "measure", "cpu", {"batch_size": 8},
                                 {"throughput_ips_mean": 50.0, "throughput_ips_std": 1.0, "verdict": "VALID"},
                                 dict(PROV), created_at="2024-01-01T00:00:00.000+00:00"))
    export_csv(store, tmp_path / "out")
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    assert header[header.index("train_time_s") + 1:] == ["macro_f1", "record_top1", "records", "window_top1",
                                                          "throughput_ips_cpu_mean", "throughput_ips_cpu_std",
                                                          "verdict_cpu"]
    ecg = next(r for r in rows if r["id"] == ARCH.id)
    image = next(r for r in rows if r["id"] == IMAGE_ARCH.id)
    assert ecg["macro_f1"] == "0.625" and image["macro_f1"] == ""
    assert (ecg["throughput_ips_cpu_mean"], ecg["verdict_cpu"]) == ("50.0", "VALID")
    assert float(ecg["macs_m"]) == count_costs_1d(ARCH, ECG).macs_m
