"""Import of Accel-NASBench records: validation, exact round trips, re-import, duplicates, costs."""

import json

import pytest

import anb_records as anb
from anbench.searchspace import Architecture, named
from anbench.store import StageResult, Store


def import_dir(run_cli, directory, *extra):
    return run_cli("import", "--format", "anb-json", str(directory), *extra)


def open_store(path):
    return Store.open(path)


def test_import_stores_architectures_trainings_and_merged_measurements(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb")
    result = import_dir(run_cli, folder)
    assert result.exit_code == 0, result.output + result.stderr
    out = result.output
    assert "records read: 5" in out and "architectures: 4 new, 1 with repeated records" in out
    assert "trainings added: 5, measurements added: 26" in out  # 6 + 4 + 6 + 6 + 6 measured devices
    assert "skipped: 0 invalid" in out
    assert "cost disagreements (params/MACs vs model_info, tolerance 1e-06 M): 0" in out

    with open_store(store_path) as store:
        stored = store.architectures()
        # integer order 0, 2, 10, 1710 (not the text order 0, 10, 1710, 2)
        assert [s.origin["file"] for s in stored] == ["result_0.json", "result_2.json", "result_10.json", "result_1710.json"]
        example = stored[3]
        assert example.arch == Architecture.from_lists([4, 1, 4, 6, 4, 6, 6], [5, 5, 3, 3, 5, 5, 3],
                                                       [1, 1, 3, 1, 2, 1, 2], [False] * 7)
        assert example.origin == {"source": "anb-json", "file": "result_1710.json", "index": 1710,
                                  "model_info": {"macs": 369.019616, "params": 4.042824}}
        assert (example.params_m, example.macs_m) == (4.042824, 369.019616)

        (train,) = store.results(stage="train", arch_id=example.id)
        assert (train.target, train.source, train.settings) == ("imagenet", "anb-json", {"source": "anb-json"})
        assert train.metrics == {"val_top1": 62.054, "val_top5": 84.354, "train_time_s": 1560.6}
        assert train.provenance["imported_from"] == "result_1710.json" and train.provenance["imported_at"]
        assert train.run == "result_1710.json"
        assert train.provenance["model_info"] == {"macs": 369.019616, "params": 4.042824}

        measures = {r.target: r for r in store.results(stage="measure", arch_id=example.id)}
        assert sorted(measures) == ["3090", "a100", "tpuv2", "tpuv3", "vck190", "zcu102"]
        assert measures["zcu102"].metrics == {"latency_ms_mean": 4.958, "latency_ms_std": None,
                                              "throughput_ips_mean": 468.6, "throughput_ips_std": None}
        assert measures["tpuv3"].metrics == {"throughput_ips_mean": 1561.6, "throughput_ips_std": 46.3}
        assert all(r.source == "anb-json" and "samples" not in r.metrics for r in measures.values())

        # unmeasured devices (null mean/std) are simply absent
        no_fpga = stored[1].id
        assert sorted(r.target for r in store.results(stage="measure", arch_id=no_fpga)) == ["3090", "a100", "tpuv2", "tpuv3"]
        assert store.missing("measure", "zcu102") == [stored[1].arch]
        assert store.missing("measure", "tpuv2") == []  # result_0 lacks TPU values, its repeat result_1711 has them
        # the repeat is a run of its own: both records' values are kept
        trains = store.results(stage="train", arch_id=stored[0].id)
        assert [(t.run, t.metrics["val_top1"]) for t in trains] == [("result_0.json", 64.118), ("result_1711.json", 62.054)]
        assert len(store.results(stage="measure", target="a100", arch_id=stored[0].id)) == 2


def test_import_then_export_reproduces_the_original_files(run_cli, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", anb.UNIQUE)
    assert import_dir(run_cli, folder).exit_code == 0
    result = run_cli("export", "--format", "anb-json", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output + result.stderr
    original, exported = anb.load_dir(folder), anb.load_dir(tmp_path / "out")
    assert sorted(exported) == sorted(original)
    for name, record in original.items():
        assert exported[name] == record
        anb.assert_same_json(exported[name], record, name)  # same key order at every level


def test_reimporting_adds_nothing(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb")
    assert import_dir(run_cli, folder).exit_code == 0
    again = import_dir(run_cli, folder)
    assert again.exit_code == 0
    assert "architectures: 0 new" in again.output
    assert "trainings added: 0, measurements added: 0 (31 already stored)" in again.output
    with open_store(store_path) as store:
        assert len(store.architectures()) == 4 and len(store.results()) == 31


def test_repeated_architectures_come_back_unchanged_under_their_own_names(run_cli, store_path, tmp_path):
    """Acceptance: two records of one architecture with different metrics; export gives both back."""
    repeat = anb.copy(anb.RESULT_1710)
    repeat["metrics"]["val_top1"] = 61.5
    repeat["platform_perf"]["throughput_a100"]["throughput_mean"] = 11001.25
    folder = anb.write_dir(tmp_path / "anb", {12: repeat, 5: anb.RESULT_1710, 7: anb.RESULT_2})  # written out of order
    imported = import_dir(run_cli, folder)
    assert imported.exit_code == 0, imported.stderr
    assert "architectures: 2 new, 1 with repeated records" in imported.output
    assert import_dir(run_cli, folder).output.count("trainings added: 0, measurements added: 0") == 1
    with Store.open(store_path) as store:
        assert [r.run for r in store.results(stage="train")] == ["result_5.json", "result_7.json", "result_12.json"]
        assert store.run_counts() == {"architectures": 2, "runs": 3, "repeated": 1}

    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    original, exported = anb.load_dir(folder), anb.load_dir(tmp_path / "out")
    assert sorted(exported) == ["result_12.json", "result_5.json", "result_7.json"]
    for name in original:
        anb.assert_same_json(exported[name], original[name], name)
    for name in original:  # byte for byte: the released files are json.dumps output
        assert (tmp_path / "out" / name).read_bytes() == (folder / name).read_bytes()

    listing = run_cli("results", "--stage", "train")
    assert listing.exit_code == 0
    assert "result_12.json" in listing.output and "result_5.json" in listing.output
    assert "19 results: 2 architectures, 3 runs (1 architecture with repeated runs)" in listing.output


BAD_RECORDS = [
    # (how to break result_10.json, key the error must name)
    (lambda r: "{not json", "not valid JSON"),
    (lambda r: [1, 2], "JSON object"),
    (lambda r: {k: v for k, v in r.items() if k != "model_info"}, "'model_info'"),
    (lambda r: {**r, "architecture": {**r["architecture"], "block5_l": 5}}, "block5_l"),
    (lambda r: {**r, "architecture": {k: v for k, v in r["architecture"].items() if k != "block3_k"}}, "block3_k"),
    (lambda r: {**r, "architecture": {**r["architecture"], "block2_se": "True"}}, "block2_se"),
    (lambda r: {**r, "metrics": {**r["metrics"], "val_top1": "65.9"}}, "metrics.val_top1"),
    (lambda r: {**r, "metrics": {"val_top1": 1.0, "val_top5": 2.0}}, "'train_time'"),
    (lambda r: {**r, "model_info": {**r["model_info"], "params": "6.159796"}}, "model_info.params"),
    (lambda r: {**r, "platform_perf": {**r["platform_perf"],
                                       "throughput_a100": {"throughput_mean": "8874.1", "throughput_std": 1.5}}},
     "platform_perf.throughput_a100.throughput_mean"),
    (lambda r: {**r, "platform_perf": {**r["platform_perf"],
                                       "throughput_a100": {"throughput_mean": 8874.1, "throughput_std": False}}},
     "platform_perf.throughput_a100.throughput_std"),  # False == 0, but a boolean is no std
    (lambda r: {**r, "platform_perf": {**r["platform_perf"], "throughput_a100": [8874.1, 1.5]}},
     "platform_perf.throughput_a100"),
    (lambda r: {**r, "platform_perf": {**r["platform_perf"], "throughput_a100": {"mean": 8874.1, "std": 1.5}}},
     "platform_perf.throughput_a100"),
    (lambda r: {**r, "platform_perf": {**r["platform_perf"], "power_a100": {"power_mean": 1.0, "power_std": 0.1}}},
     "power_a100"),
    (lambda r: {**r, "platform_perf": {k: v for k, v in r["platform_perf"].items() if k != "throughput_tpuv2"}},
     "throughput_tpuv2"),
    (lambda r: {**r, "platform_perf": {**r["platform_perf"],
                                       "latency_zcu102": {"latency_mean": None, "latency_std": 0.5}}},
     "latency_zcu102"),
]


@pytest.mark.parametrize("breaker,key", BAD_RECORDS, ids=[k for _, k in BAD_RECORDS])
def test_one_bad_record_stops_the_import_with_one_line(run_cli, store_path, tmp_path, breaker, key):
    folder = anb.write_dir(tmp_path / "anb", anb.UNIQUE)
    broken = breaker(anb.copy(anb.RESULT_10))
    (folder / "result_10.json").write_text(broken if isinstance(broken, str) else json.dumps(broken))
    result = import_dir(run_cli, folder)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: result_10.json: ") and key in lines[0], lines[0]
    assert "Traceback" not in result.output + result.stderr
    with open_store(store_path) as store:
        assert store.architectures() == [] and store.results() == []  # nothing written, not even result_0


def test_skip_invalid_imports_the_rest(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", anb.UNIQUE)
    (folder / "result_2.json").write_text('{"architecture": ')
    bad = anb.copy(anb.RESULT_1710)
    bad["metrics"]["train_time"] = "1560.6 s"
    (folder / "result_1710.json").write_text(json.dumps(bad))
    result = import_dir(run_cli, folder, "--skip-invalid")
    assert result.exit_code == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(problems) == 2
    assert problems[0].startswith("skipped result_2.json: not valid JSON")
    assert problems[1].startswith("skipped result_1710.json: metrics.train_time")
    assert "skipped: 2 invalid" in result.output
    assert "architectures: 2 new" in result.output
    with open_store(store_path) as store:
        assert [s.origin["index"] for s in store.architectures()] == [0, 10]


def test_cost_disagreements_are_reported_and_the_record_wins(run_cli, store_path, tmp_path):
    records = {i: anb.copy(r) for i, r in anb.UNIQUE.items()}
    records[2]["model_info"]["params"] = 7.7786  # computed: 7.778586
    records[10]["model_info"]["macs"] = 443.2726  # computed: 443.272608
    folder = anb.write_dir(tmp_path / "anb", records)
    result = import_dir(run_cli, folder)
    assert result.exit_code == 0
    assert "tolerance 1e-06 M): 2" in result.output
    assert "result_2.json: model_info params 7.7786 (computed 7.778586)" in result.output
    assert "result_10.json: model_info macs 443.2726 (computed 443.272608)" in result.output
    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    exported = anb.load_dir(tmp_path / "out")
    assert exported["result_2.json"]["model_info"] == {"macs": 604.630768, "params": 7.7786}
    assert exported["result_10.json"]["model_info"] == {"macs": 443.2726, "params": 6.159796}


def test_export_import_export_is_stable_with_own_results_and_extra_devices(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0, 1710: anb.RESULT_1710})
    assert import_dir(run_cli, folder).exit_code == 0
    b0 = named("efficientnet-b0")
    with open_store(store_path) as store:
        store.add_architecture(b0, {"source": "sample", "seed": 3, "index": 0})
        example = store.architectures()[1].id
        for arch_id, device, metrics in [
            (example, "cpu", {"throughput_ips_mean": 120.5, "throughput_ips_std": 0.25, "latency_ms_mean": 9.5,
                              "latency_ms_std": 0.125, "samples": {"throughput_ips": [120.0, 121.0]}}),
            (b0.id, "cpu", {"throughput_ips_mean": 80.0, "throughput_ips_std": 1.0}),
            (b0.id, "a100", {"throughput_ips_mean": 9000.0, "throughput_ips_std": 3.0}),
        ]:
            store.add_result(StageResult(arch_id, "measure", device, {"batch_size": 16}, metrics,
                                         {"host": {"hostname": "lab-7"}, "seeds": {"input": 0}}))
        store.add_result(StageResult(b0.id, "train", "synthetic", {"epochs": 2},
                                     {"val_top1": 10.5, "val_top5": 50.0, "train_time_s": 3.25}, {"seeds": {"torch": 1}}))
    assert run_cli("export", "--out", tmp_path / "first").exit_code == 0
    first = anb.load_dir(tmp_path / "first")
    assert sorted(first) == ["result_0.json", "result_1710.json", "result_1711.json"]
    assert "anbench" not in first["result_0.json"]  # only imported data
    assert list(first["result_1710.json"]["platform_perf"])[-2:] == ["latency_cpu", "throughput_cpu"]
    assert [e["target"] for e in first["result_1710.json"]["anbench"]["results"]] == ["cpu"]

    second_store = tmp_path / "second.db"
    imported = run_cli("--store", second_store, "import", tmp_path / "first", store=False)
    assert imported.exit_code == 0, imported.output + imported.stderr
    assert "architectures: 3 new" in imported.output
    assert "trainings added: 3, measurements added: 13" in imported.output
    assert run_cli("--store", second_store, "export", "--out", tmp_path / "second", store=False).exit_code == 0
    second = anb.load_dir(tmp_path / "second")
    assert sorted(second) == sorted(first)
    for name in first:
        anb.assert_same_json(second[name], first[name], name)
    with open_store(second_store) as store:
        assert {r.target for r in store.results(stage="train")} == {"imagenet", "synthetic"}


def test_missing_or_empty_directories_are_user_errors(run_cli, tmp_path):
    missing = import_dir(run_cli, tmp_path / "nope")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = import_dir(run_cli, tmp_path / "empty")
    assert empty.exit_code == 2 and "no result_*.json files" in empty.stderr


def test_a_result_file_without_an_integer_index_is_invalid(run_cli, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0})
    (folder / "result_final.json").write_text(json.dumps(anb.RESULT_10))
    result = import_dir(run_cli, folder)
    assert result.exit_code == 2 and "result_final.json: file name must be result_<integer>.json" in result.stderr
    assert "skipped: 1 invalid" in import_dir(run_cli, folder, "--skip-invalid").output


def test_importing_a_file_instead_of_a_folder_is_one_line(run_cli, tmp_path):
    record = tmp_path / "result_1.json"
    record.write_text(json.dumps(anb.RESULT_10))
    result = import_dir(run_cli, record)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "is not a directory" in result.stderr


def _all_null(record):
    empty = anb.copy(record)
    empty["metrics"] = {key: None for key in empty["metrics"]}
    for entry in empty["platform_perf"].values():
        for key in entry:
            entry[key] = None
    return empty


@pytest.mark.parametrize("empty_first", [True, False], ids=["empty-first", "empty-later"])
def test_a_repeat_with_no_values_is_kept_and_exported_back_whatever_the_order(run_cli, store_path, tmp_path,
                                                                              empty_first):
    values, empty = anb.RESULT_1710, _all_null(anb.RESULT_1710)
    records = {3: empty, 7: values} if empty_first else {3: values, 7: empty}
    folder = anb.write_dir(tmp_path / "anb", records)
    imported = import_dir(run_cli, folder)
    assert imported.exit_code == 0, imported.output + imported.stderr
    assert "records read: 2" in imported.output and "skipped: 0 invalid" in imported.output
    exported = run_cli("export", "--out", tmp_path / "out")
    assert exported.exit_code == 0, exported.output + exported.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("result_*.json")) == ["result_3.json", "result_7.json"]
    for name in ("result_3.json", "result_7.json"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    manifest = json.loads((out / "anbench-export.json").read_text())
    assert manifest["counts"]["trained"] == 1  # the nulls are no training


def test_an_import_pauses_the_garbage_collector_only_while_it_runs(tmp_path):
    import gc

    from anbench.errors import AnbenchError
    from anbench.importer import import_anb_json

    folder = anb.write_dir(tmp_path / "anb", anb.UNIQUE)
    with Store.open(tmp_path / "s.db") as store:
        assert gc.isenabled()
        import_anb_json(store, folder)
        assert gc.isenabled()
        (folder / "result_2.json").write_text("{")
        with pytest.raises(AnbenchError):
            import_anb_json(store, folder)
        assert gc.isenabled()
        gc.disable()  # a caller's own choice is left as it was
        try:
            with pytest.raises(AnbenchError, match="does not exist"):
                import_anb_json(store, tmp_path / "missing")
            assert not gc.isenabled()
        finally:
            gc.enable()


@pytest.mark.parametrize("mean", [5.0, 5, 0.0, -1.0, float("inf"), float("nan"), True, None, "5", 1e308])
@pytest.mark.parametrize("std", [None, 0, 0.0, 0.5, -0.5, False, True, float("nan"), float("inf"), "0"])
def test_the_inline_parse_of_a_device_entry_agrees_with_the_checked_one(mean, std):
    # _parse takes the common valid entry inline and hands everything else to _perf:
    # each (mean, std) pair must give what _perf alone gives, value or refusal
    from anbench.errors import AnbenchError
    from anbench.importer import _Invalid, _perf, parse_record

    record = anb.copy(anb.RESULT_10)
    entry = {"throughput_mean": mean, "throughput_std": std}
    record["platform_perf"]["throughput_a100"] = entry
    try:
        _, expected = _perf("throughput_a100", entry)
    except _Invalid as exc:
        with pytest.raises(AnbenchError) as refused:
            parse_record("result_10.json", 10, record)
        assert str(exc) in str(refused.value)
        return
    measures = parse_record("result_10.json", 10, record).measures
    assert measures.get("a100") == expected
    if expected is not None:
        assert all(type(measures["a100"][k]) is type(v) for k, v in expected.items())
