"""The SQLite results store: exact round trips, idempotence, atomicity, concurrency, bad files."""

import json
import os
from pathlib import Path
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from anbench.errors import AnbenchError
from anbench.searchspace import named, sample
import anbench.store as store_module
from anbench.store import APPLICATION_ID, SCHEMA_VERSION, StageResult, Store, result_key

B0 = named("efficientnet-b0")
SMALLEST = named("smallest")


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.db") as s:
        yield s


def measure_result(arch, target="cpu", **settings):
    return StageResult(arch.id, "measure", target, {"batch_size": 8, **settings},
                       {"throughput_ips_mean": 100.5, "throughput_ips_std": 1.25}, {"host": "test"})


def test_architectures_keep_costs_origin_and_insertion_order(store):
    origin = {"source": "sample", "seed": 1, "index": 3, "sampler_version": "anbench-sampler/1"}
    assert store.add_architecture(SMALLEST, origin) is True
    assert store.add_architecture(B0) is True
    assert store.add_architecture(SMALLEST, {"source": "other"}) is False  # idempotent, first origin kept
    stored = store.architectures()
    assert [s.id for s in stored] == [SMALLEST.id, B0.id]
    assert stored[0].origin == origin and stored[0].arch == SMALLEST
    assert (stored[1].params_m, stored[1].macs_m) == (5.288548, 415.145024)
    assert stored[1].origin == {} and stored[1].created_at
    assert store.architecture(B0.id) == B0
    assert store.architecture("0" * 16) is None


def test_architecture_by_prefix_unique_missing_and_ambiguous(store):
    archs = sample(40, seed=5)
    for arch in archs:
        store.add_architecture(arch)
    target = archs[7]
    assert store.architecture_by_prefix(target.id) == target
    by_first = {}
    for arch in archs:
        by_first.setdefault(arch.id[0], []).append(arch)
    shared = next(c for c, group in by_first.items() if len(group) > 1)
    with pytest.raises(AnbenchError, match="ambiguous"):
        store.architecture_by_prefix(shared)
    unique_prefix = next(a.id[:6] for a in archs if sum(b.id.startswith(a.id[:6]) for b in archs) == 1)
    assert store.architecture_by_prefix(unique_prefix).id.startswith(unique_prefix)
    missing = next(p for p in (f"{i:04x}" for i in range(65536)) if not any(a.id.startswith(p) for a in archs))
    with pytest.raises(AnbenchError, match="no stored architecture"):
        store.architecture_by_prefix(missing)
    with pytest.raises(AnbenchError, match="not an architecture id"):
        store.architecture_by_prefix("xyz%")


def test_json_values_round_trip_exactly(tmp_path):
    values = {
        "int": 7, "big": 2**62 + 1, "float": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.7976931348623157e308,
        "whole_float": 3.0, "none": None, "bools": [True, False], "text": "µs ✓",
        "nested": {"z": 1, "a": [1, 2.5, None, {"k": "v"}]},
    }
    with Store.open(tmp_path / "s.db") as store:
        store.add_architecture(B0, origin=values)
        store.add_result(StageResult(B0.id, "train", "imagenet", values, values, values))
    with Store.open(tmp_path / "s.db") as store:  # from disk, not a cache
        (result,) = store.results()
        origin = store.architectures()[0].origin
    for got in (result.settings, result.metrics, result.provenance, origin):
        assert got == values
        assert list(got) == list(values) and list(got["nested"]) == ["z", "a"]
        assert type(got["whole_float"]) is float and type(got["int"]) is int and type(got["big"]) is int
        assert got["float"].hex() == (0.1 + 0.2).hex() and got["none"] is None


def test_result_keys_idempotence_replace_and_queries(store):
    store.add_architecture(B0)
    store.add_architecture(SMALLEST)
    first = measure_result(B0, batch_size=8, precision="fp32")
    assert first.key == StageResult(B0.id, "measure", "cpu", {"precision": "fp32", "batch_size": 8}, {}, {}).key
    assert first.key != measure_result(B0, batch_size=16).key
    assert store.add_result(first) is True and first.created_at
    again = measure_result(B0, batch_size=8, precision="fp32")
    again.metrics = {"throughput_ips_mean": 1.0}
    assert store.add_result(again) is False
    assert store.results()[0].metrics["throughput_ips_mean"] == 100.5
    assert store.add_result(again, replace=True) is True
    assert [r.metrics for r in store.results()] == [{"throughput_ips_mean": 1.0}]

    store.add_result(measure_result(B0, target="a100"))
    store.add_result(StageResult(SMALLEST.id, "train", "imagenet", {}, {"val_top1": 60.0}, {}))
    assert [r.target for r in store.results(stage="measure")] == ["cpu", "a100"]
    assert [r.arch_id for r in store.results(arch_id=SMALLEST.id)] == [SMALLEST.id]
    assert store.results(stage="measure", target="a100")[0].arch_id == B0.id
    assert store.has_result(B0.id, "measure", "cpu")
    assert store.has_result(B0.id, "measure", "cpu", {"batch_size": 8, "precision": "fp32"})
    assert not store.has_result(B0.id, "measure", "cpu", {"batch_size": 9})
    assert not store.has_result(SMALLEST.id, "measure", "cpu")
    assert store.missing("measure", "cpu") == [SMALLEST]
    assert store.missing("train", "imagenet") == [B0]
    assert store.missing("measure", "tpuv3") == [B0, SMALLEST]


def test_batched_results_get_the_keys_of_single_results(store):
    # add_results computes keys and JSON in its own loop (imports store tens of thousands):
    # it must give exactly the keys result_key gives, runs and non-ASCII targets included
    store.add_architecture(B0)
    settings = {"b": [1, 2.5], "a": None}
    results = [StageResult(B0.id, "measure", target, settings, {"x": i * 0.1, "y": None}, {"p": "µs"}, run=run)
               for i, (target, run) in enumerate([("cpu", ""), ("cpu", "seed=3"), ("gpü", ""), ("gpü", "result_7.json")])]
    assert store.add_results(results) == 4
    assert {r.key for r in results} == {row[0] for row in store.conn.execute("SELECT key FROM results")}
    assert all(store.has_key(result_key(B0.id, "measure", r.target, dict(settings), r.run)) for r in results)
    assert [(r.target, r.run, r.metrics) for r in store.results()] == [(r.target, r.run, r.metrics) for r in results]
    assert store.add_results(results) == 0  # stored keys are left as they are


def test_a_bulk_insert_rebuilds_the_indexes_and_rolls_back_whole(store, monkeypatch):
    monkeypatch.setattr(store_module, "_BULK_ROWS", 3)
    index_sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'results' ORDER BY name"
    before = store.conn.execute(index_sql).fetchall()
    store.add_architecture(B0)
    results = [measure_result(B0, target=f"d{i}") for i in range(5)]
    assert store.add_results(results + results[:2]) == 5  # repeats within the batch are still ignored
    assert store.conn.execute(index_sql).fetchall() == before
    assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    plan = " ".join(str(row) for row in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM results WHERE stage = 'measure' AND target = 'd1'"))
    assert "results_by_stage_target" in plan
    assert [r.target for r in store.results(stage="measure", target="d3")] == ["d3"]
    # a failed bulk insert (an unknown architecture) leaves results and indexes as they were
    orphans = [measure_result(SMALLEST, target=f"e{i}") for i in range(6)]
    with pytest.raises(AnbenchError, match="store the architectures first"):
        store.add_results(orphans)
    assert store.conn.execute(index_sql).fetchall() == before
    assert store.count_results() == 5


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "µs ✓"], "b": {"c": -0.0, "d": 1e-320}},
    {"n": float("nan"), "i": float("inf"), "m": float("-inf")},
    [], {}, "text", 2 ** 70, {"k": {"nested": [[[]]]}},
])
def test_compact_json_is_the_json_modules(value):
    assert store_module._dumps(value) == json.dumps(value, separators=(",", ":"))


def test_compact_json_errors_leave_the_encoder_usable():
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular"):
        store_module._dumps(cyclic)
    inner = [object()]
    with pytest.raises(TypeError, match="not JSON serializable"):
        store_module._dumps({"inner": inner})
    # the aborted encode must not leave `inner` marked as "being encoded" (read as circular next time)
    inner[0] = 1
    assert store_module._dumps({"again": inner}) == '{"again":[1]}'


def test_results_need_their_architecture_and_a_known_stage(store):
    with pytest.raises(AnbenchError, match="add it before"):
        store.add_result(measure_result(B0))
    store.add_architecture(B0)
    with pytest.raises(AnbenchError, match="unknown stage"):
        store.add_result(StageResult(B0.id, "evaluate", "x", {}, {}, {}))


def test_a_failed_transaction_writes_nothing(store):
    store.add_architecture(B0)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_architecture(SMALLEST)
            store.add_result(measure_result(B0))
            raise RuntimeError("boom")
    assert [s.id for s in store.architectures()] == [B0.id]
    assert store.results() == []
    with store.transaction():  # the store stays usable
        store.add_result(measure_result(B0))
    assert len(store.results()) == 1


WRITER = textwrap.dedent("""
    import sys
    from anbench.searchspace import named
    from anbench.store import StageResult, Store
    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    arch = named("efficientnet-b0")
    store = Store.open(path)
    store.add_architecture(arch)
    for i in range(n):
        assert store.add_result(StageResult(arch.id, "measure", tag, {"i": i}, {"throughput_ips_mean": float(i)}, {}))
    store.close()
""")


def test_two_processes_writing_concurrently_lose_nothing(tmp_path):
    path = tmp_path / "shared.db"
    Store.open(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, "200"], stderr=subprocess.PIPE, text=True)
             for tag in ("dev-a", "dev-b")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Store.open(path) as store:
        assert len(store.results()) == 400
        assert {r.metrics["throughput_ips_mean"] for r in store.results(target="dev-b")} == {float(i) for i in range(200)}
        assert len(store.architectures()) == 1
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


KILLED = textwrap.dedent("""
    import sys
    from anbench.searchspace import named
    from anbench.store import StageResult, Store
    store = Store.open(sys.argv[1])
    store.conn.execute("PRAGMA cache_size = 5")  # spill uncommitted pages into the WAL file
    arch = named("efficientnet-b0")
    with store.transaction():
        store.add_architecture(named("smallest"))
        for i in range(3000):
            store.add_result(StageResult(arch.id, "measure", "cpu", {"i": i}, {"pad": "x" * 200}, {}))
        print("in transaction", flush=True)
        sys.stdin.readline()  # blocks until the parent kills us
""")


def test_a_process_killed_inside_a_transaction_leaves_the_previous_state(tmp_path):
    path = tmp_path / "killed.db"
    with Store.open(path) as store:
        store.add_architecture(B0)
        store.add_result(measure_result(B0, target="a100"))
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "in transaction", proc.stderr.read()
        assert os.path.getsize(str(path) + "-wal") > 100_000  # the uncommitted rows did reach the disk
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Store.open(path) as store:
        assert [s.id for s in store.architectures()] == [B0.id]
        assert [(r.target, r.settings) for r in store.results()] == [("a100", {"batch_size": 8})]
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.add_result(measure_result(B0))  # and it is writable again


def assert_one_line_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_corrupt_file_is_refused_with_one_line(tmp_path):
    path = tmp_path / "corrupt.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(AnbenchError) as excinfo:
        Store.open(path)
    assert_one_line_error(excinfo, str(path), "not an SQLite database")


def test_another_applications_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(AnbenchError) as excinfo:
        Store.open(path)
    assert_one_line_error(excinfo, str(path), "not a usable anbench store")
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]  # untouched
    conn.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(AnbenchError) as excinfo:
        Store.open(path)
    assert_one_line_error(excinfo, str(path), "newer")


def test_unusable_locations_are_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(AnbenchError) as excinfo:
        Store.open(blocker / "store.db")
    assert_one_line_error(excinfo, str(blocker / "store.db"))
    with pytest.raises(AnbenchError) as excinfo:
        Store.open(tmp_path)
    assert_one_line_error(excinfo, str(tmp_path), "is a directory")


def test_a_device_or_fifo_is_not_a_store(tmp_path):
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    for path in (Path("/dev/null"), fifo):
        with pytest.raises(AnbenchError) as excinfo:
            Store.open(path)
        assert_one_line_error(excinfo, str(path), "is not a regular file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.db"]  # no journal beside it
    assert not Path("/dev/null-journal").exists() and not Path("/dev/null-wal").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(AnbenchError) as excinfo:
            Store.open(locked / "store.db")
        assert_one_line_error(excinfo, str(locked), "not writable")
    finally:
        locked.chmod(0o700)


def test_new_and_empty_files_become_stores_that_persist(tmp_path):
    empty = tmp_path / "nested" / "dir" / "empty.db"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    for path in (empty, tmp_path / "new" / "fresh.db"):
        with Store.open(path) as store:
            store.add_architecture(B0)
            assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert store.conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        with Store.open(path) as store:
            assert store.architecture(B0.id) == B0


def test_cli_reports_a_bad_store_as_one_line(run_cli, store_path):
    store_path.write_bytes(os.urandom(4096))
    result = run_cli("results")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(store_path) in lines[0], result.stderr
