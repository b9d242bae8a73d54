"""`anbench report`: correct numbers (brute force, scipy), real images, a page a browser shows."""

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from PIL import Image

from anbench.report.stats import average_ranks, higher_is_better, kendall_tau_b, pareto_front, spearman
from anbench.searchspace import named, sample
from anbench.store import StageResult, Store

from cdp_browser import Browser, chromium_path, screenshot_dir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "accel-nasbench" / "anb_dataset_jsons.tar.gz"
PROV = {"anbench_version": "0.1.0"}


# -- numbers ------------------------------------------------------------------------

def brute_force_front(acc, speed, higher):
    s = speed if higher else [-v for v in speed]
    front = set()
    for i in range(len(acc)):
        dominated = any(acc[j] >= acc[i] and s[j] >= s[i] and (acc[j] > acc[i] or s[j] > s[i])
                        for j in range(len(acc)) if j != i)
        if not dominated:
            front.add(i)
    return front


@pytest.mark.parametrize("higher", [True, False])
def test_pareto_front_equals_brute_force_with_ties(higher):
    rng = random.Random(7)
    for trial in range(200):
        n = rng.randint(1, 40)
        # few distinct values: many ties and exact duplicates
        acc = [rng.choice([50.0, 55.5, 60.0, 61.0, 65.0]) if trial % 2 else rng.uniform(40, 70) for _ in range(n)]
        speed = [rng.choice([1.0, 2.0, 3.0, 4.0]) if trial % 3 else rng.uniform(100, 1000) for _ in range(n)]
        got = pareto_front(np.array(acc), np.array(speed), higher)
        assert set(got.tolist()) == brute_force_front(acc, speed, higher), (acc, speed)
        assert len(got) == len(set(got.tolist()))
        ordered = [speed[i] for i in got]
        assert ordered == sorted(ordered, reverse=higher)  # best speed first


def test_metric_direction_comes_from_the_name():
    assert higher_is_better("throughput_ips") and higher_is_better("val_top1")
    assert not higher_is_better("latency_ms") and not higher_is_better("train_time_s")


def test_rank_correlations_equal_scipy_with_ties():
    rng = np.random.default_rng(3)
    for n in (2, 3, 7, 50, 1300):
        for tied in (False, True):
            x = rng.integers(0, 6, n).astype(float) if tied else rng.normal(size=n)
            y = x * 0.5 + (rng.integers(0, 4, n) if tied else rng.normal(size=n))
            assert np.allclose(average_ranks(x), scipy.stats.rankdata(x))
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                continue  # constant input: checked below
            assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
            assert kendall_tau_b(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)
            assert kendall_tau_b(x, -y) == pytest.approx(-kendall_tau_b(x, y), abs=1e-12)
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(kendall_tau_b([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(kendall_tau_b([1.0], [2.0]))


# -- a small store with repeats, failures, nulls ---------------------------------------

A100_A, ZCU_A = named("a100-a"), named("zcu102-a")


def measure(arch, device, settings, throughput=None, latency=None, run="", **extra):
    metrics = {}
    if throughput is not None:
        metrics.update(throughput_ips_mean=throughput[0], throughput_ips_std=throughput[1])
    if latency is not None:
        metrics.update(latency_ms_mean=latency[0], latency_ms_std=latency[1])
    metrics.update(extra)
    return StageResult(arch.id, "measure", device, settings, metrics, dict(PROV), run=run)


def train(arch, top1, settings, dataset="imagenet", run="", curves=None):
    metrics = {"val_top1": top1, "train_time_s": 10.0, "verdict": "VALID"}
    if curves is not None:
        metrics["curves"] = curves
    return StageResult(arch.id, "train", dataset, settings, metrics, dict(PROV), run=run)


def curve_rows(top1):
    # the layout anbench's trainer stores: validation only in the last epoch
    rows = [{"epoch": e, "train_loss": 2.5 - 0.4 * e, "train_top1": 20.0 + 8 * e, "lr_end": 0.1} for e in range(4)]
    rows[-1].update(val_top1=top1, val_loss=1.1)
    return rows


def build_store(path, n=30):
    """Archs with accuracy; a100 (throughput, std), zcu102 (throughput and latency, std null),
    cpu (latency with a CI). The first 3 archs are trained and measured twice on a100 (a second
    run with the same settings: a repeat); arch 0 also has a training and arch 1 an a100
    measurement with other settings (not repeats: left out), one a100 measurement FAILED, cpu
    has a single arch."""
    rng = random.Random(11)
    archs = sample(n, seed=5) + [A100_A, ZCU_A]
    truth = {}
    with Store.open(path) as store, store.transaction():
        for i, arch in enumerate(archs):
            store.add_architecture(arch, {"source": "test"})
            acc = round(rng.uniform(50, 70), 3)
            tput = round(rng.uniform(1000, 9000), 1)
            zlat = round(rng.uniform(2, 9), 3)
            truth[arch.id] = {"acc": [acc], "a100": [tput], "zcu_lat": zlat}
            store.add_result(train(arch, acc, {"seed": 1}, curves=curve_rows(acc) if i < 5 else None))
            store.add_result(measure(arch, "a100", {"batch": 128}, (tput, tput * 0.01)))
            store.add_result(measure(arch, "zcu102", {"batch": 1}, (1000 / zlat, None), (zlat, None)))
            if i < 3:
                store.add_result(train(arch, acc + 1.0, {"seed": 1}, run="seed=2"))
                store.add_result(measure(arch, "a100", {"batch": 128}, (tput * 1.1, tput * 0.02), run="repeat=2"))
                truth[arch.id]["acc"].append(acc + 1.0)
                truth[arch.id]["a100"].append(tput * 1.1)
        # other recipe / setup: a different settings group, never averaged with the runs above
        store.add_result(train(archs[0], 5.0, {"seed": 1, "epochs": 99}, run="seed=2"))
        store.add_result(measure(archs[1], "a100", {"batch": 1}, (3.0, 0.1)))
        store.add_result(measure(archs[3], "a100", {"batch": 128}, (1.0, 0.0), run="repeat=3", verdict="FAILED",
                                 reasons=["out of memory at batch 128"]))
        store.add_result(measure(archs[0], "cpu", {}, None, (40.0, 1.0), latency_ms_ci_low=39.0,
                                 latency_ms_ci_high=41.0))
        store.add_result(measure(archs[4], "cpu", {}, None, (80.0, 9.0), verdict="INVALID",
                                 reasons=["CI target not reached within budget", "host busy: load 3.1 on 2 cores"]))
        store.add_result(StageResult(archs[5].id, "train", "imagenet", {"seed": 9}, {"verdict": "DIVERGED",
                                     "error": "loss is nan at epoch 2", "val_top1": None}, dict(PROV)))
    return archs, truth


@pytest.fixture
def small_store(store_path):
    return build_store(store_path)


def report_json(run_cli, *args):
    result = run_cli("report", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_numbers_use_the_mean_over_runs_and_match_brute_force_and_scipy(run_cli, small_store):
    archs, truth = small_store
    numbers = report_json(run_cli)
    assert numbers["architectures"] == len(archs) and numbers["dataset"] == "imagenet"
    ids = [a.id for a in archs]
    acc = [float(np.mean(truth[a]["acc"])) for a in ids]
    tput = [float(np.mean(truth[a]["a100"])) for a in ids]
    lat = [truth[a]["zcu_lat"] for a in ids]
    pareto = {(e["device"], e["metric"]): e for e in numbers["pareto"]}
    a100 = pareto[("a100", "throughput_ips")]
    assert a100["n"] == len(ids)
    assert {p["id"] for p in a100["front"]} == {ids[i] for i in brute_force_front(acc, tput, True)}
    for point in a100["front"]:  # the plotted value of a repeated architecture is the mean of its runs
        assert point["throughput_ips"] == pytest.approx(np.mean(truth[point["id"]]["a100"]))
    zlat = pareto[("zcu102", "latency_ms")]
    assert {p["id"] for p in zlat["front"]} == {ids[i] for i in brute_force_front(acc, lat, False)}
    assert pareto[("cpu", "latency_ms")]["front"] is None and pareto[("cpu", "latency_ms")]["n"] == 1

    corr = numbers["correlations"]
    names = corr["names"]
    assert names[:3] == ["macs_m", "params_m", "accuracy"]
    assert {"a100 throughput_ips", "zcu102 latency_ms", "zcu102 throughput_ips", "cpu latency_ms"} <= set(names)
    macs = [next(a for a in archs if a.id == i) for i in ids]
    from anbench.costs import count_costs

    macs = [count_costs(a).macs_m for a in macs]
    i, j = names.index("macs_m"), names.index("a100 throughput_ips")
    assert corr["spearman"][i][j] == pytest.approx(scipy.stats.spearmanr(macs, tput).statistic, abs=1e-9)
    assert corr["kendall"][i][j] == pytest.approx(scipy.stats.kendalltau(macs, tput).statistic, abs=1e-9)
    assert corr["n"][i][j] == len(ids)
    k = names.index("cpu latency_ms")
    assert corr["spearman"][i][k] is None and corr["n"][i][k] == 1  # one point: no number, not a fake 1.0

    quality = numbers["quality"]
    assert quality["accuracy"]["repeated_architectures"] == 3
    assert quality["accuracy"]["repeat_spread_points"]["max"] == pytest.approx(1.0)
    a100q = quality["devices"]["a100 throughput_ips"]
    assert a100q["repeated_architectures"] == 3
    assert a100q["repeat_rel_spread"]["median"] == pytest.approx(0.1 / 1.05)
    assert a100q["cv"]["n"] == len(ids) + 3
    assert quality["devices"]["zcu102 latency_ms"]["cv"]["n"] == 0  # FPGA: std null
    assert quality["devices"]["cpu latency_ms"]["ci_rel_width"]["median"] == pytest.approx(2.0 / 40.0)

    coverage = {(r["stage"], r["target"]): r for r in numbers["coverage"]}
    assert coverage[("measure", "a100")] == {"stage": "measure", "target": "a100", "architectures": len(ids),
                                             "results": len(ids) + 5, "failed": 1}
    assert numbers["failures"] == [
        {"arch_id": ids[3], "stage": "measure", "target": "a100", "run": "repeat=3", "verdict": "FAILED",
         "reason": "out of memory at batch 128"},
        {"arch_id": ids[4], "stage": "measure", "target": "cpu", "run": "", "verdict": "INVALID",
         "reason": "CI target not reached within budget; host busy: load 3.1 on 2 cores"},
        {"arch_id": ids[5], "stage": "train", "target": "imagenet", "run": "", "verdict": "DIVERGED",
         "reason": "loss is nan at epoch 2"}]
    assert coverage[("measure", "cpu")]["architectures"] == 1 and coverage[("measure", "cpu")]["failed"] == 1
    assert numbers["training_curves"] == 5
    assert numbers["settings_mixed"] == {
        "measure a100": {"groups": 2, "used": {"batch": 128}, "results_left_out": 1},
        "train imagenet": {"groups": 2, "used": {"seed": 1}, "results_left_out": 1}}
    assert numbers["named_in_store"] == {"a100-a": A100_A.id, "zcu102-a": ZCU_A.id}


def test_device_and_dataset_options(run_cli, small_store, store_path):
    archs, _ = small_store
    with Store.open(store_path) as store:  # a second dataset, trained on fewer architectures, many times
        for run in range(5):
            for arch in archs[:3]:
                store.add_result(train(arch, 90.0 + run, {}, dataset="synthetic", run=f"seed={run}"))
    assert report_json(run_cli)["dataset"] == "imagenet"  # the dataset with most trained architectures
    numbers = report_json(run_cli, "--dataset", "synthetic", "--device", "a100")
    assert numbers["dataset"] == "synthetic" and numbers["distributions"]["accuracy"]["mean"] == pytest.approx(92.0)
    assert [(e["n"], len(e["front"])) for e in numbers["pareto"]] == [(3, 1)]
    numbers = report_json(run_cli, "--device", "zcu102")
    assert {e["device"] for e in numbers["pareto"]} == {"zcu102"}
    assert numbers["correlations"]["names"] == ["macs_m", "params_m", "accuracy", "zcu102 throughput_ips",
                                                "zcu102 latency_ms"]
    for args, expected in ((("--device", "tpuv9"), "error: --device tpuv9: no measurements of it in "),
                           (("--dataset", "cifar10"), "error: --dataset cifar10: no training results on it "
                                                      "(trained datasets: imagenet, synthetic)")):
        result = run_cli("report", "--format", "json", *args)
        assert result.exit_code == 2 and result.stderr.startswith(expected), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def check_png(path, width, height):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (width, height), path
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 5 and (pixels < 200).mean() > 0.005, f"{path} looks blank"


@pytest.mark.slow
def test_report_writes_real_figures_and_a_self_contained_page(run_cli, small_store, tmp_path):
    out = tmp_path / "rep"
    result = run_cli("report", "--out", out)
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "report.json").read_text())
    html = (out / "index.html").read_text()
    assert "Settings are mixed</b> for train imagenet" in html
    expected = {"pareto_throughput_a100", "pareto_throughput_zcu102", "pareto_latency_zcu102", "pareto_latency_cpu",
                "macs_vs_speed", "params_vs_speed", "correlation_matrix", "distributions", "measurement_quality",
                "coverage", "training_curves"}
    assert {Path(f).stem for f in numbers["figures"]} == expected
    mode = {path.name: path.stat().st_mode & 0o777 for path in out.iterdir()}
    assert mode["report.json"] == mode["index.html"] == mode["coverage.png"]  # shared like the figures, not 0600
    sizes = dict(re.findall(r'<figure id="fig-([\w.-]+)"><img src="data:image/png;base64,[^"]+" alt="[^"]*" '
                            r'(width="\d+" height="\d+")', html))
    assert set(sizes) == expected  # every figure is inline in the page
    for name in expected:
        width, height = map(int, re.findall(r"\d+", sizes[name]))
        check_png(out / f"{name}.png", width, height)
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF-")
    check_png(out / "pareto_throughput_a100.png", 640, 480)
    # nothing is fetched: no external URL in any src/href, no script
    assert not re.search(r'(src|href)="(?!data:|#)', html) and "<script" not in html
    front = next(e for e in numbers["pareto"] if e["device"] == "a100")["front"]
    for point in front:
        assert point["id"] in html
    assert "cpu: accuracy vs latency.</b> not enough data: 1 architecture with both accuracy and latency" in html
    assert "mean over its runs" in html and "out of memory at batch 128" in html and "loss is nan at epoch 2" in html


@pytest.mark.slow
def test_report_page_in_headless_chromium(run_cli, small_store, tmp_path):
    assert chromium_path(), "chromium missing: scripts/apt-packages.txt installs it (make install)"
    out = tmp_path / "rep"
    assert run_cli("report", "--out", out).exit_code == 0
    figures = len(json.loads((out / "report.json").read_text())["figures"])
    with Browser(tmp_path / "profile") as browser:
        browser.open((out / "index.html").resolve().as_uri())
        images = browser.evaluate(
            "Promise.all([...document.images].map(i => i.decode().catch(() => null)))"
            ".then(() => [...document.images].map(i => [i.alt, i.naturalWidth, i.naturalHeight, i.complete]))")
        errors = browser.errors()
        shot = browser.screenshot(screenshot_dir(tmp_path) / "report-page.png")
        title = browser.evaluate("document.querySelector('h1').textContent")
        # the checks above can fail: a broken page shows its errors and a zero-size image
        broken = tmp_path / "broken.html"
        broken.write_text('<img src="missing.png" alt="gone"><script>console.error("boom")</script>')
        browser.open(broken.as_uri())
        broken_images = browser.evaluate("[...document.images].map(i => i.naturalWidth)")
        broken_errors = browser.errors()
    assert broken_images == [0] and any("boom" in e for e in broken_errors), broken_errors
    assert errors == []
    assert len(images) == figures
    assert all(w > 0 and h > 0 and complete for _, w, h, complete in images), images
    assert title == "anbench report"
    check_png(shot, 1400, 1000)


# -- missing data ---------------------------------------------------------------------

def test_a_store_path_that_does_not_exist_is_one_line_and_creates_nothing(run_cli, store_path):
    result = run_cli("report", "--format", "json")
    assert result.exit_code == 2 and result.stderr.startswith("error: nothing to report: there is no store at")
    assert not store_path.exists()


def test_empty_store_is_one_clear_line(run_cli, store_path, tmp_path):
    Store.open(store_path).close()  # exists, holds nothing
    for args in (("--format", "json"), ("--out", tmp_path / "rep")):
        result = run_cli("report", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("error: nothing to report: the store ")
    assert not (tmp_path / "rep").exists()


@pytest.mark.slow
def test_no_results_and_single_device_give_panels_that_say_what_is_missing(run_cli, store_path, tmp_path):
    archs = sample(4, seed=2)
    with Store.open(store_path) as store:
        for arch in archs:
            store.add_architecture(arch)
    out = tmp_path / "bare"
    result = run_cli("report", "--out", out)
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["pareto"] == [] and numbers["dataset"] is None and numbers["coverage"] == []
    assert numbers["correlations"]["names"] == ["macs_m", "params_m"]
    html = (out / "index.html").read_text()
    assert "No device measurements stored." in html and "No training curves stored" in html
    assert "No results stored yet: 4 architectures, none trained, compiled or measured." in html
    check_png(out / "coverage.png", *Image.open(out / "coverage.png").size)

    # one device, one measured architecture, no training
    with Store.open(store_path) as store:
        store.add_result(StageResult(archs[0].id, "measure", "a100", {}, {"throughput_ips_mean": 5000.0,
                                                                           "throughput_ips_std": None}, {}))
    out = tmp_path / "single"
    result = run_cli("report", "--out", out)
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["pareto"] == [{"device": "a100", "metric": "throughput_ips", "n": 0, "higher_is_better": True,
                                  "front": None}]
    assert numbers["correlations"]["spearman"][0][2] is None
    assert (out / "pareto_throughput_a100.png").exists() and "pareto_throughput_a100.png" in numbers["figures"]


# -- the released data ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not DATA.exists(), reason="released Accel-NASBench data (../shared) not present")
def test_released_data_a100_front_and_macs_against_all_eight_device_columns(run_cli, tmp_path):
    import tarfile

    with tarfile.open(DATA) as archive:
        archive.extractall(tmp_path, filter="data")
    folder = next(p.parent for p in tmp_path.rglob("result_0.json"))
    assert run_cli("import", folder).exit_code == 0
    numbers = report_json(run_cli)
    assert numbers["architectures"] == 5125 and numbers["dataset"] == "imagenet"
    a100 = next(e for e in numbers["pareto"] if e["device"] == "a100" and e["metric"] == "throughput_ips")
    assert a100["n"] == 5125 and 10 <= len(a100["front"]) <= 100
    accs = [p["accuracy"] for p in a100["front"]]
    assert accs == sorted(accs)  # fastest first, so accuracy rises along the front
    names = numbers["correlations"]["names"]
    device_columns = ["zcu102 latency_ms", "vck190 latency_ms", "a100 throughput_ips", "3090 throughput_ips",
                      "tpuv2 throughput_ips", "tpuv3 throughput_ips", "zcu102 throughput_ips", "vck190 throughput_ips"]
    assert set(device_columns) <= set(names)
    row = numbers["correlations"]["spearman"][names.index("macs_m")]
    for column in device_columns:
        rho = row[names.index(column)]
        assert rho is not None and (rho > 0.5 if "latency" in column else rho < -0.5), (column, rho)


def test_help_and_json_do_not_load_matplotlib(run_cli, small_store, store_path):
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from anbench.cli import cli; "
            f"r = CliRunner().invoke(cli, ['--store', {str(store_path)!r}, 'report', '--format', 'json']); "
            "assert r.exit_code == 0, r.output; r = CliRunner().invoke(cli, ['report', '--help']); "
            "assert r.exit_code == 0; print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_out_that_is_a_file_is_one_line(run_cli, small_store, tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    result = run_cli("report", "--out", target)
    assert result.exit_code == 2 and result.stderr == f"error: --out {target} exists and is not a directory\n"


def test_ecg_and_deepsea_records_are_reported_by_their_own_task_metric(run_cli, store_path):
    archs = sample(4, seed=3)
    with Store.open(store_path) as store, store.transaction():
        for i, arch in enumerate(archs):
            store.add_architecture(arch, {"source": "test"})
            # what the trainer stores for ECG: the task metric, no val_top1
            store.add_result(StageResult(arch.id, "train", "ecg", {"seed": 0}, {
                "verdict": "VALID", "metric_name": "macro_f1", "metric": 0.3 + 0.1 * i, "val_macro_f1": 0.3 + 0.1 * i},
                dict(PROV)))
            store.add_result(measure(arch, "a100", {"batch": 128}, (1000.0 + 100 * i, 1.0)))
    numbers = report_json(run_cli)
    assert numbers["dataset"] == "ecg" and numbers["metric_name"] == "macro_f1"
    assert numbers["distributions"]["accuracy"]["mean"] == pytest.approx(0.45)
    assert numbers["pareto"][0]["n"] == 4


@pytest.mark.parametrize("dataset, metric_name, axis", [("ecg", "macro_f1", "macro_f1"), ("imagenet", "top1", "%")])
def test_the_accuracy_histogram_axis_names_the_task_metric_not_a_percentage(store_path, tmp_path, dataset,
                                                                           metric_name, axis):
    from anbench.report.data import gather
    from anbench.report.figures import Writer, distribution_figure

    with Store.open(store_path) as store:
        for i, arch in enumerate(sample(4, seed=3)):
            store.add_architecture(arch, {"source": "test"})
            store.add_result(StageResult(arch.id, "train", dataset, {}, {
                "metric_name": metric_name, "metric": 0.3 + 0.1 * i}, dict(PROV)))
        data = gather(store)

    class Peek(Writer):  # the axis label as drawn, read before the figure is closed
        def save(self, fig, *args, **kwargs):
            self.xlabel = fig.axes[0].get_xlabel()
            super().save(fig, *args, **kwargs)

    writer = Peek(tmp_path)
    distribution_figure(writer, data)
    assert data.metric_name == metric_name and writer.xlabel == axis


def test_the_pareto_table_names_the_task_metric_not_a_percentage():
    from anbench.report.html import _pareto_table

    entry = {"device": "a100", "metric": "throughput_ips", "n": 2, "front": [
        {"id": "ab", "name": None, "compact": "e1-k3", "accuracy": 0.61, "throughput_ips": 900.0}]}
    ecg = _pareto_table(entry, "macro_f1")
    assert ">val_macro_f1<" in ecg and "[%]" not in ecg
    assert ">val_top1 [%]<" in _pareto_table(entry, "top1")
