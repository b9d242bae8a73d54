"""The shared work loop: leases, workers splitting a store, kills, busy stores, Ctrl-C."""

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from anbench.errors import AnbenchError
from anbench.pending import import_pending
from anbench.searchspace import named, sample
from anbench.store import APPLICATION_ID, SCHEMA_VERSION, StageResult, Store
from anbench.workloop import StageOutput, WorkItem, next_run, run_items

ANBENCH = str(Path(sys.executable).with_name("anbench"))
TINY_MEASURE = ("--batch-size", "1", "--resolution", "32", "--repeats", "1", "--batches", "1", "--warmup", "0",
                "--no-latency", "--threads", "1")


def items_for(archs, target="t"):
    return [WorkItem(a, "measure", target, {"batch_size": 1}) for a in archs]


def echo_stage(calls):
    def stage(item, ctx):
        calls.append(item.arch.id)
        ctx.status("working")
        return StageOutput({"throughput_ips_mean": 1.0}, {"by": "test"})
    return stage


def test_items_run_once_and_stored_ones_are_skipped(tmp_path):
    archs = sample(3, seed=5)
    calls = []
    with Store.open(tmp_path / "s.db") as store:
        first = run_items(store, items_for(archs[:2]), echo_stage(calls), progress=False)
        second = run_items(store, items_for(archs), echo_stage(calls), progress=False)
        assert [i.arch.id for i, _ in first.done] == [a.id for a in archs[:2]]
        assert second.already_stored == 2 and [i.arch.id for i, _ in second.done] == [archs[2].id]
        assert calls == [a.id for a in archs]
        assert store.leases() == []  # every claim released once its result is in
        assert {r.arch_id for r in store.results()} == {a.id for a in archs}


def test_a_live_claim_is_respected_and_an_expired_or_dead_one_taken_over(tmp_path):
    arch = named("smallest")
    (item,) = items_for([arch])
    with Store.open(tmp_path / "s.db") as store:
        store.add_architecture(arch)
        assert store.claim(item.key, arch.id, "measure", "t", "worker-a", 60) == "claimed"
        assert store.claim(item.key, arch.id, "measure", "t", "worker-a", 60) == "claimed"  # renewing is fine
        assert store.claim(item.key, arch.id, "measure", "t", "worker-b", 60) == "held"
        real_leases = store.leases

        def leases():
            store.renew(item.key, "worker-a", 60)  # worker-a is alive: it renews between any two looks
            return real_leases()

        store.leases = leases
        assert run_items(store, [item], echo_stage([]), progress=False, lease_s=0.2).claimed_elsewhere == 1
        store.leases = real_leases

        assert store.claim(item.key, arch.id, "measure", "t", "worker-a", -1) == "claimed"  # now expired
        assert store.claim(item.key, arch.id, "measure", "t", "worker-b", 60) == "claimed"
        assert not store.renew(item.key, "worker-a", 60)  # a's lease is lost, b's is live
        assert store.renew(item.key, "worker-b", 60)

        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        store.conn.execute("UPDATE leases SET owner = 'gone', pid = ?", (int(dead.stdout),))
        assert any("dead pid" in line for line in store.check())
        assert store.claim(item.key, arch.id, "measure", "t", "worker-c", 60) == "claimed"

        store.add_result(StageResult(arch.id, "measure", "t", {"batch_size": 1}, {}, {}))
        assert store.claim(item.key, arch.id, "measure", "t", "worker-d", 60) == "stored"
        assert store.leases() == []


@pytest.mark.slow
@pytest.mark.parametrize("workers,n_archs", [(3, 6), (4, 8)], ids=["3-workers-6-archs", "4-workers-8-archs"])
def test_measuring_workers_split_the_architectures(tmp_path, workers, n_archs):
    db = tmp_path / "shared.db"
    subprocess.run([ANBENCH, "--store", db, "sample", "-n", str(n_archs), "--seed", "11", "--save"], check=True,
                   capture_output=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([ANBENCH, "--store", db, "measure", "--device", "cpu", "--from-store", *TINY_MEASURE],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(workers)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    counts = [int(re.search(r"^(\d+) measured on cpu", out, re.M).group(1)) for out, _ in outputs]
    assert sum(counts) == n_archs, outputs
    with Store.open(db) as store:
        measured = [r.arch_id for r in store.results(stage="measure", target="cpu")]
        assert sorted(measured) == sorted(s.id for s in store.architectures())  # each exactly once
        assert store.leases() == []


KILLED_WORKER = textwrap.dedent("""
    import sys
    from anbench.searchspace import sample
    from anbench.store import Store
    from anbench.workloop import StageOutput, WorkItem, run_items
    store = Store.open(sys.argv[1])
    items = [WorkItem(a, "measure", "t", {"batch_size": 1}) for a in sample(3, seed=2)]
    def stage(item, ctx):
        if item is items[1]:
            print("working on the second", flush=True)
            sys.stdin.readline()  # blocks until the parent kills us
        return StageOutput({"throughput_ips_mean": 2.0}, {})
    run_items(store, items, stage, progress=False)
""")


def test_a_killed_workers_item_is_taken_over_and_nothing_is_doubled(tmp_path):
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "working on the second", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    archs = sample(3, seed=2)
    with Store.open(db) as store:
        assert [r.arch_id for r in store.results()] == [archs[0].id]  # finished before the kill: kept
        assert len(store.leases()) == 1  # the dead worker's claim is still there
        calls = []
        summary = run_items(store, items_for(archs), echo_stage(calls), progress=False)
        assert calls == [archs[1].id, archs[2].id] and summary.already_stored == 1
        assert sorted(r.arch_id for r in store.results()) == sorted(a.id for a in archs)
        assert store.leases() == []


def test_a_busy_store_is_waited_for_and_the_result_kept(tmp_path):
    db = tmp_path / "s.db"
    arch = named("smallest")
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    with Store.open(db, busy_timeout_ms=20) as store:
        store.add_architecture(arch)
        first_failure = threading.Event()
        real_transaction = store.transaction

        @contextlib.contextmanager
        def transaction():
            try:
                with real_transaction() as inner:
                    yield inner
            except AnbenchError:
                first_failure.set()
                raise

        store.transaction = transaction

        def stage(item, ctx):
            holder.execute("BEGIN IMMEDIATE")  # another writer takes the lock while we work
            return StageOutput({"throughput_ips_mean": 3.0}, {})

        releaser = threading.Thread(target=lambda: (first_failure.wait(60), holder.execute("COMMIT")))
        releaser.start()
        summary = run_items(store, items_for([arch]), stage, progress=False, store_patience_s=120)
        releaser.join()
        assert first_failure.is_set() and len(summary.done) == 1 and not summary.side_files
        assert store.results()[0].metrics == {"throughput_ips_mean": 3.0}
    holder.close()


def test_a_store_that_stays_locked_gets_a_side_file_that_import_takes_back(tmp_path, run_cli, store_path):
    arch = named("smallest")
    holder = sqlite3.connect(store_path, isolation_level=None)
    with Store.open(store_path, busy_timeout_ms=20) as store:
        store.add_architecture(arch)

        def stage(item, ctx):
            holder.execute("BEGIN IMMEDIATE")
            return StageOutput({"throughput_ips_mean": 4.0}, {"host": "h"})

        summary = run_items(store, items_for([arch]), stage, progress=False, store_patience_s=0.2)
    holder.execute("ROLLBACK")
    holder.close()
    (side,) = summary.side_files
    assert not summary.done and json.loads(Path(side).read_text())["result"]["metrics"] == {"throughput_ips_mean": 4.0}
    taken = run_cli("import", "--format", "pending", side)
    assert taken.exit_code == 0, taken.output
    assert "1 new" in taken.output
    with Store.open(store_path) as store:
        assert [r.metrics for r in store.results()] == [{"throughput_ips_mean": 4.0}]
        assert import_pending(store, side) == (0, 1)  # taking it back twice adds nothing
    assert Path(side).exists()  # the user removes side files, anbench never does


@pytest.fixture
def sigint_as_in_a_terminal():
    """SIGINT with Python's default handler, whatever the suite inherited (a suite started
    with & by a script inherits it ignored)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_lets_the_current_item_finish_then_stops(tmp_path, sigint_as_in_a_terminal):
    archs = sample(3, seed=9)
    calls = []

    def stage(item, ctx):
        calls.append(item.arch.id)
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C during the first item
        return StageOutput({"throughput_ips_mean": 5.0}, {})

    with Store.open(tmp_path / "s.db") as store:
        summary = run_items(store, items_for(archs), stage, progress=False)
        assert summary.interrupted and calls == [archs[0].id]
        assert [r.arch_id for r in store.results()] == [archs[0].id] and store.leases() == []
        assert "2 not started (interrupted)" in summary.line("measured")


def test_an_ignored_sigint_stays_ignored(tmp_path, sigint_as_in_a_terminal):
    # a job started with & by a script (or under nohup) is meant to run on through Ctrl-C
    archs = sample(2, seed=9)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def stage(item, ctx):
        os.kill(os.getpid(), signal.SIGINT)
        return StageOutput({"throughput_ips_mean": 5.0}, {})

    with Store.open(tmp_path / "s.db") as store:
        summary = run_items(store, items_for(archs), stage, progress=False)
        assert not summary.interrupted and len(summary.done) == 2
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_force_adds_runs_beside_the_first(tmp_path):
    arch = named("smallest")
    settings = {"batch_size": 1}
    with Store.open(tmp_path / "s.db") as store:
        assert next_run(store, arch.id, "measure", "t", settings) == ""
        for expected in ("", "repeat-2", "repeat-3"):
            run = next_run(store, arch.id, "measure", "t", settings)
            assert run == expected
            run_items(store, [WorkItem(arch, "measure", "t", settings, run)], echo_stage([]), progress=False)
        assert [r.run for r in store.results()] == ["", "repeat-2", "repeat-3"]


def test_a_schema_1_store_is_migrated_forward_keeping_its_keys(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE architectures (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            record_json TEXT NOT NULL, params_m REAL NOT NULL, macs_m REAL NOT NULL, origin_json TEXT NOT NULL,
            created_at TEXT NOT NULL);
        CREATE TABLE results (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,
            arch_id TEXT NOT NULL REFERENCES architectures(id), stage TEXT NOT NULL, target TEXT NOT NULL,
            settings_json TEXT NOT NULL, metrics_json TEXT NOT NULL, provenance_json TEXT NOT NULL,
            source TEXT NOT NULL, created_at TEXT NOT NULL);
        PRAGMA user_version = 1;
    """)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    arch = named("smallest")
    old = StageResult(arch.id, "measure", "cpu", {"batch_size": 8}, {"throughput_ips_mean": 9.0}, {})
    conn.execute("INSERT INTO architectures (id, record_json, params_m, macs_m, origin_json, created_at) "
                 "VALUES (?, ?, 1.0, 2.0, '{}', 't')", (arch.id, json.dumps(arch.to_record())))
    conn.execute("INSERT INTO results (key, arch_id, stage, target, settings_json, metrics_json, provenance_json, "
                 "source, created_at) VALUES (?, ?, 'measure', 'cpu', ?, ?, '{}', 'anbench', 't')",
                 (old.key, arch.id, json.dumps(old.settings), json.dumps(old.metrics)))
    conn.commit()
    conn.close()
    with Store.open(db) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        (result,) = store.results()
        assert result.run == "" and result.key == old.key and store.has_key(old.key)
        assert store.leases() == [] and store.check() == []
        store.add_result(StageResult(arch.id, "measure", "cpu", {"batch_size": 8}, {}, {}, run="repeat-2"))
        assert len(store.results()) == 2


def test_store_check_and_backup_commands(run_cli, store_path, tmp_path):
    assert run_cli("sample", "-n", "2", "--seed", "1", "--save").exit_code == 0
    healthy = run_cli("store", "check")
    assert healthy.exit_code == 0 and "ok" in healthy.output.splitlines()[-1]
    copy = tmp_path / "copy.db"
    assert run_cli("store", "backup", copy).exit_code == 0
    with Store.open(copy) as backup:
        assert backup.count_architectures() == 2
    again = run_cli("store", "backup", copy)
    assert again.exit_code == 2 and "exists" in again.stderr


def _garble(store_path):
    with Store.open(store_path) as store:
        store.add_architecture(named("smallest"))
        for i in range(400):
            store.add_result(StageResult(named("smallest").id, "measure", "cpu", {"i": i}, {"pad": "x" * 300}, {}))
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(store_path.read_bytes())
    page = 4096
    for offset in range(page * 10, min(len(data), page * 30)):  # garble pages deep inside the results table
        data[offset] = (data[offset] * 7 + 13) % 256
    store_path.write_bytes(bytes(data))


def test_garbled_pages_are_one_line_and_check_says_what_is_wrong(run_cli, store_path):
    _garble(store_path)
    before = store_path.read_bytes()
    listed = run_cli("results", "--format", "json")
    assert listed.exit_code == 2 and "not a usable anbench store" in listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1
    checked = run_cli("store", "check")
    assert checked.exit_code == 1, checked.output + checked.stderr
    assert "problem: integrity:" in checked.output or "problem: database error:" in checked.output, checked.output
    assert checked.stderr == ""
    as_json = run_cli("store", "check", "--format", "json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["problems"]
    assert store_path.read_bytes() == before  # never "repaired" behind the user's back


class _FailingCommit:
    """A connection whose COMMIT fails the way SQLite's does on an I/O error: SQLite has
    already rolled the transaction back when the error reaches the caller."""

    def __init__(self, conn):
        self._conn = conn
        self._writes_result = False

    def execute(self, sql, *args):
        if sql.startswith("INSERT INTO results"):
            self._writes_result = True  # leases still work: the result's own commit fails
        if sql == "COMMIT" and self._writes_result:
            self._writes_result = False
            self._conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_failed_commit_is_one_error_and_the_result_goes_to_a_side_file(tmp_path):
    arch = named("smallest")
    with Store.open(tmp_path / "s.db") as store:
        store.add_architecture(arch)
        real = store._conn
        store._conn = _FailingCommit(real)
        with pytest.raises(AnbenchError, match="cannot write store .*disk I/O error"):
            store.add_result(StageResult(arch.id, "measure", "t", {}, {}, {}))
        assert not real.in_transaction
        stage = lambda item, ctx: StageOutput({"throughput_ips_mean": 5.0}, {})
        summary = run_items(store, items_for([arch]), stage, progress=False, store_patience_s=0.1)
        store._conn = real
        (side,) = summary.side_files
        assert not summary.done
        assert json.loads(Path(side).read_text())["result"]["metrics"] == {"throughput_ips_mean": 5.0}
        assert store.results() == []


def test_the_heartbeat_survives_sqlite_errors(tmp_path):
    arch = named("smallest")
    renewals = []
    two = threading.Event()
    with Store.open(tmp_path / "s.db") as store:
        def renew(*args):
            renewals.append(args)
            if len(renewals) >= 2:
                two.set()
            raise sqlite3.OperationalError("database disk image is malformed")

        store.renew = renew
        summary = run_items(store, items_for([arch]), lambda item, ctx: StageOutput({"ok": two.wait(30)}, {}),
                            progress=False, lease_s=0.02)
        assert len(renewals) >= 2  # a dead heartbeat thread would have renewed once
        assert summary.done[0][1].metrics == {"ok": True}


def test_a_worker_that_lost_its_lease_says_so_and_does_not_count_the_item_done(tmp_path, capsys):
    arch = named("smallest")
    (item,) = items_for([arch])
    lost = threading.Event()
    with Store.open(tmp_path / "s.db") as store:
        real_renew = store.renew

        def renew(*args):
            kept = real_renew(*args)
            if not kept:
                lost.set()
            return kept

        store.renew = renew

        def stage(it, ctx):
            # another worker presumed this one dead, took the lease over and stored its own result
            store.conn.execute("UPDATE leases SET owner = 'worker-b' WHERE key = ?", (it.key,))
            store.add_result(StageResult(arch.id, "measure", "t", {"batch_size": 1}, {"throughput_ips_mean": 9.0}, {}))
            assert lost.wait(30)
            return StageOutput({"throughput_ips_mean": 1.0}, {})

        store.add_architecture(arch)
        summary = run_items(store, [item], stage, progress=False, lease_s=0.02)
        assert not summary.done and summary.already_stored == 1
        assert [r.metrics for r in store.results()] == [{"throughput_ips_mean": 9.0}]
    out = capsys.readouterr().out
    assert "lease lost to another worker" in out
    assert "another worker stored this result first" in out
    assert summary.line("measured") == "0 measured, 1 already stored"


@pytest.mark.parametrize("version", [0, -1])
def test_a_marked_store_with_no_known_version_is_refused_untouched(tmp_path, run_cli, store_path, version):
    with Store.open(store_path) as store:
        store.add_architecture(named("smallest"))
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.conn.execute("PRAGMA journal_mode = DELETE")
        store.conn.execute(f"PRAGMA user_version = {version}")
    before = store_path.read_bytes()
    with pytest.raises(AnbenchError, match=f"not a usable anbench store: unknown schema version {version}"):
        Store.open(store_path)
    listed = run_cli("results")
    assert listed.exit_code == 2 and listed.stderr.count("\n") == 1 and "unknown schema version" in listed.stderr
    assert store_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [store_path.name]  # no -wal / -shm / journal


def test_a_lease_that_expires_during_the_pass_is_taken_over_and_a_renewed_one_left(tmp_path):
    dead, live = sample(2, seed=11)
    items = items_for([dead, live])
    calls = []
    with Store.open(tmp_path / "s.db") as store:
        for item in items:
            store.add_architecture(item.arch)
        # a worker on another host: killed (its lease runs out soon) / alive (it keeps renewing)
        store.conn.execute("INSERT INTO leases VALUES (?, ?, 'measure', 't', 'gone', 'elsewhere', 1, 't', ?, ?)",
                           (items[0].key, dead.id, 0.0, time.time() + 0.3))
        store.conn.execute("INSERT INTO leases VALUES (?, ?, 'measure', 't', 'alive', 'elsewhere', 2, 't', ?, ?)",
                           (items[1].key, live.id, 0.0, time.time() + 3600))
        real_leases = store.leases

        def leases():
            store.renew(items[1].key, "alive", 3600)  # the live worker renews between any two looks
            return real_leases()

        store.leases = leases
        summary = run_items(store, items, echo_stage(calls), progress=False, lease_s=0.2)
        assert calls == [dead.id]
        assert [i.arch.id for i, _ in summary.done] == [dead.id] and summary.claimed_elsewhere == 1
        assert [r.arch_id for r in store.results()] == [dead.id]


def test_a_busy_store_at_claim_time_is_waited_for(tmp_path):
    arch = named("smallest")
    failures = []
    with Store.open(tmp_path / "s.db") as store:
        real_claim = store.claim

        def claim(*args):
            if len(failures) < 2:
                failures.append(args)
                raise AnbenchError(f"store {store.path} is busy or not writable: database is locked")
            return real_claim(*args)

        store.claim = claim
        summary = run_items(store, items_for([arch]), echo_stage([]), progress=False, store_patience_s=60)
        assert len(failures) == 2 and len(summary.done) == 1
