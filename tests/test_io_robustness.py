"""Robustness of import and export: hostile record files, bad records, bad export targets,
kill -9 and Ctrl-C half-way. Each kind of bad input is its own test id."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import anb_records as anb
from anbench.errors import AnbenchError
from anbench.store import Store

INDEX = 3  # the hostile entry is result_3.json, between the good records 0, 2, 10, 1710


def snapshot(store_path):
    with Store.open(store_path) as store:
        return store.fingerprint(), store.count_architectures(), store.count_results()


@pytest.fixture
def seeded(run_cli, store_path, tmp_path):
    """A store that already holds one import, and a folder of good records to import next."""
    assert run_cli("import", anb.write_dir(tmp_path / "first", {1710: anb.RESULT_1710})).exit_code == 0
    return anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0, 2: anb.RESULT_2, 10: anb.RESULT_10})


def record_with(change):
    record = anb.copy(anb.RESULT_10)
    change(record)
    return json.dumps(record)


def _set(path, value):
    def change(record):
        node = record
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _deep(depth):
    return "[" * depth + "]" * depth


# (id, how to make result_3.json in folder, text the error line must hold)
HOSTILE_FILES = [
    ("fifo", lambda p: os.mkfifo(p), "a FIFO, not a regular file"),
    ("unix-socket", lambda p: _bind_socket(p), "a socket, not a regular file"),
    ("directory", lambda p: p.mkdir(), "a directory, not a regular file"),
    ("symlink-to-dev-zero", lambda p: p.symlink_to("/dev/zero"), "a symlink to /dev/zero, outside the folder"),
    ("symlink-to-file-outside", lambda p: p.symlink_to("/etc/passwd"), "outside the folder"),
    ("symlink-dotdot-escape", lambda p: _escape_link(p), "outside the folder"),
    ("broken-symlink", lambda p: p.symlink_to(p.parent / "missing.json"), "a broken symlink"),
    ("oversized", lambda p: p.write_text(" " * (1 << 20) + json.dumps(anb.RESULT_10)), "over the limit of 1048576"),
    ("empty-file", lambda p: p.write_text(""), "not valid JSON"),
    ("not-utf8", lambda p: p.write_bytes(b'{"architecture": "\xff\xfe"}'), "not UTF-8"),
    ("huge-integer", lambda p: p.write_text(record_with(_set(["metrics", "val_top1"], 10 ** 400))),
     "metrics.val_top1 is not a finite double"),
    ("integer-over-digit-limit", lambda p: p.write_text(
        json.dumps(anb.RESULT_10).replace('"val_top1": 65.9', '"val_top1": ' + "9" * 5000)), "not a finite double"),
    ("float-overflow", lambda p: p.write_text(
        json.dumps(anb.RESULT_10).replace('"val_top1": 65.9', '"val_top1": 1e400')), "not a finite double"),
    ("nan", lambda p: p.write_text(json.dumps(anb.RESULT_10).replace('"val_top1": 65.9', '"val_top1": NaN')),
     "NaN is not a finite number"),
    ("infinity", lambda p: p.write_text(
        json.dumps(anb.RESULT_10).replace('"train_time": 1893.0', '"train_time": -Infinity')),
     "-Infinity is not a finite number"),
    ("deep-nesting", lambda p: p.write_text('{"metrics": ' + _deep(200_000) + "}"), "nested deeper"),
    ("deep-nesting-in-anbench-block", lambda p: p.write_text(
        record_with(_set(["anbench"], json.loads(_deep(40))))), "anbench: nested deeper"),
    ("non-finite-in-anbench-block", lambda p: p.write_text(
        json.dumps({**anb.RESULT_10, "anbench": {"results": [{"x": 1}]}}).replace('{"x": 1}', '{"x": 1e999}')),
     "anbench: number inf is not a finite double"),
    ("negative-latency", lambda p: p.write_text(
        record_with(_set(["platform_perf", "latency_zcu102", "latency_mean"], -5.87))),
     "platform_perf.latency_zcu102.latency_mean must be > 0"),
    ("zero-throughput", lambda p: p.write_text(
        record_with(_set(["platform_perf", "throughput_a100", "throughput_mean"], 0))),
     "platform_perf.throughput_a100.throughput_mean must be > 0"),
    ("negative-std", lambda p: p.write_text(
        record_with(_set(["platform_perf", "throughput_3090", "throughput_std"], -1.01))),
     "platform_perf.throughput_3090.throughput_std must be >= 0"),
    ("negative-train-time", lambda p: p.write_text(record_with(_set(["metrics", "train_time"], -3.0))),
     "metrics.train_time must be > 0"),
    ("zero-params", lambda p: p.write_text(record_with(_set(["model_info", "params"], 0))),
     "model_info.params must be > 0"),
    ("boolean-as-number", lambda p: p.write_text(record_with(_set(["metrics", "val_top5"], True))),
     "metrics.val_top5 must be a number or null, got boolean"),
    ("unknown-top-level-key", lambda p: p.write_text(record_with(_set(["notes"], "x"))),
     "unknown top-level key 'notes'"),
    ("top-level-string", lambda p: p.write_text('"result"'), "must be a JSON object"),
]


def _bind_socket(path):
    server = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(path.parent)  # a relative name: socket paths are limited to 108 bytes
    try:
        server.bind(path.name)
    finally:
        os.chdir(cwd)
        server.close()  # the socket file stays


def _escape_link(path):
    outside = path.parent.parent / "outside.json"
    outside.write_text(json.dumps(anb.RESULT_10))
    path.symlink_to(Path("..") / "outside.json")


@pytest.mark.parametrize("make,expected", [h[1:] for h in HOSTILE_FILES], ids=[h[0] for h in HOSTILE_FILES])
def test_a_hostile_record_file_is_one_line_and_leaves_the_store_untouched(run_cli, store_path, seeded, make, expected):
    make(seeded / f"result_{INDEX}.json")
    before = snapshot(store_path)
    result = run_cli("import", seeded)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: result_{INDEX}.json: "), result.stderr
    assert expected in lines[0], lines[0]
    assert len(lines[0]) < 300
    assert snapshot(store_path) == before

    skipped = run_cli("import", seeded, "--skip-invalid")
    assert skipped.exit_code == 0, skipped.stderr
    assert skipped.stderr.splitlines() == [lines[0].replace("error: ", "skipped ", 1)]
    assert "architectures: 3 new" in skipped.output
    assert snapshot(store_path)[1:] == (before[1] + 3, before[2] + 3 + 14)  # 4 + 4 + 6 devices measured


def test_a_fifo_never_blocks_a_real_import(tmp_path):
    """In a separate process with a deadline: a FIFO that were opened would block forever."""
    folder = anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0})
    os.mkfifo(folder / "result_1.json")
    os.symlink("/dev/zero", folder / "result_2.json")
    done = subprocess.run([sys.executable, "-c", "from anbench.cli import main; main()", "--store", tmp_path / "s.db",
                           "import", folder, "--skip-invalid"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["skipped result_1.json: a FIFO, not a regular file",
                                        "skipped result_2.json: a symlink to /dev/zero, outside the folder"]


def test_a_symlink_inside_the_folder_is_followed(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0})
    (folder / "keep").mkdir()
    (folder / "keep" / "r.json").write_text(json.dumps(anb.RESULT_10))
    (folder / "result_1.json").symlink_to(Path("keep") / "r.json")
    result = run_cli("import", folder)
    assert result.exit_code == 0, result.stderr
    assert "architectures: 2 new" in result.output


def test_the_size_limit_is_configurable(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", {0: anb.RESULT_0})
    size = (folder / "result_0.json").stat().st_size
    small = run_cli("import", folder, "--max-record-bytes", size - 1)
    assert small.exit_code == 2 and f"{size} bytes, over the limit of {size - 1}" in small.stderr
    assert run_cli("import", folder, "--max-record-bytes", size).exit_code == 0


# -- export targets ------------------------------------------------------------------------


@pytest.fixture
def imported(run_cli, store_path, tmp_path):
    folder = anb.write_dir(tmp_path / "anb", anb.ALL)
    assert run_cli("import", folder).exit_code == 0
    return folder


def tree(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def _out_is_file(tmp):
    (tmp / "out").write_text("x")
    return tmp / "out"


def _parent_is_file(tmp):
    (tmp / "plain").write_text("x")
    return tmp / "plain" / "out"


def _foreign_files(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "notes.txt").write_text("mine")
    return tmp / "out"


def _garbled_manifest(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "anbench-export.json").write_text("{not json")
    (tmp / "out" / "result_0.json").write_text("{}")
    return tmp / "out"


def _under_proc(tmp):
    return Path("/proc/anbench-export-test/out")


BAD_TARGETS = [
    ("out-is-a-file", _out_is_file, "exists and is not a directory"),
    ("parent-is-a-file", _parent_is_file, "cannot create the folder of --out"),
    ("foreign-files", _foreign_files, "notes.txt, which no anbench export wrote"),
    ("garbled-manifest", _garbled_manifest, "which no anbench export wrote"),
    ("unwritable-place", _under_proc, "cannot create the folder of --out"),
]


@pytest.mark.parametrize("make,expected", [b[1:] for b in BAD_TARGETS], ids=[b[0] for b in BAD_TARGETS])
@pytest.mark.parametrize("fmt", ["anb-json", "csv"])
def test_a_bad_export_target_is_one_line_and_left_as_it_was(run_cli, imported, tmp_path, make, expected, fmt):
    out = make(tmp_path)
    before = tree(out) if out.is_dir() else out.read_bytes() if out.exists() else None
    result = run_cli("export", "--format", fmt, "--out", out, "--overwrite")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and expected in result.stderr, result.stderr
    after = tree(out) if out.is_dir() else out.read_bytes() if out.exists() else None
    assert after == before
    assert not [p for p in tmp_path.iterdir() if ".export-" in p.name]


def test_exporting_into_the_imported_folder_removes_nothing(run_cli, imported):
    before = tree(imported)
    result = run_cli("export", "--out", imported, "--overwrite")
    assert result.exit_code == 2 and "which no anbench export wrote" in result.stderr
    assert tree(imported) == before  # the case: 13 originals were deleted here


def test_an_earlier_export_needs_overwrite_and_an_added_file_blocks_it(run_cli, imported, tmp_path):
    out = tmp_path / "out"
    assert run_cli("export", "--out", out).exit_code == 0
    first = tree(out)
    again = run_cli("export", "--out", out)
    assert again.exit_code == 2 and "pass --overwrite" in again.stderr and tree(out) == first
    (out / "mine.txt").write_text("x")
    blocked = run_cli("export", "--out", out, "--overwrite")
    assert blocked.exit_code == 2 and "mine.txt besides an earlier export" in blocked.stderr
    (out / "mine.txt").unlink()
    replaced = run_cli("export", "--out", out, "--overwrite")
    assert replaced.exit_code == 0 and "replaced an earlier export (5 files)" in replaced.output


def test_a_symlinked_out_folder_is_replaced_behind_the_link(run_cli, imported, tmp_path):
    real = tmp_path / "real"
    assert run_cli("export", "--out", real).exit_code == 0
    (tmp_path / "link").symlink_to(real)
    assert run_cli("export", "--out", tmp_path / "link", "--overwrite").exit_code == 0
    assert (tmp_path / "link").is_symlink() and (real / "anbench-export.json").exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_exported_files_get_the_umask_permissions(run_cli, imported, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert set(modes.values()) == {0o666 & ~umask}
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~umask


def test_the_manifest_lists_every_file_with_its_hash(run_cli, imported, store_path, tmp_path):
    import hashlib

    assert run_cli("export", "--out", tmp_path / "out").exit_code == 0
    manifest = json.loads((tmp_path / "out" / "anbench-export.json").read_text())
    files = {p.name for p in (tmp_path / "out").glob("result_*.json")}
    assert set(manifest["files"]) == files and len(files) == 5
    for name, entry in manifest["files"].items():
        data = (tmp_path / "out" / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert manifest["counts"] == {"files": 5, "records": 5, "architectures": 4, "trained": 5,
                                  "measured": {"3090": 5, "a100": 5, "tpuv2": 4, "tpuv3": 4, "vck190": 4, "zcu102": 4}}
    assert manifest["anbench_version"] and manifest["export_format"] == "anb-json"
    with Store.open(store_path) as store:
        assert manifest["store"] == {"path": str(store_path), "fingerprint": store.fingerprint()}


# -- kill -9 and Ctrl-C half-way ---------------------------------------------------------------

PAUSING_CLI = textwrap.dedent("""
    import os, signal, sys, time
    # Ctrl-C as from a terminal: a suite started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then leaves it ignored (the test would wait forever)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import {module} as owner
    pause_after = int(os.environ["PAUSE_AFTER"])
    *path, name = "{function}".split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]

    def pausing(*args, **kwargs):
        if calls[0] == pause_after:
            print("PAUSED", flush=True)
            time.sleep(3600)
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(owner, name, pausing)
    from anbench.cli import main
    sys.argv = ["anbench", *sys.argv[1:]]
    main()
""")


def start_paused(tmp_path, module, function, pause_after, *args):
    """Run the CLI in a process that stops on call ``pause_after`` of ``module.function``;
    returns the process once it is stopped there (it printed PAUSED)."""
    script = tmp_path / "pausing_cli.py"
    script.write_text(PAUSING_CLI.format(module=module, function=function))
    env = {**os.environ, "PAUSE_AFTER": str(pause_after)}
    proc = subprocess.Popen([sys.executable, script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.strip() == "PAUSED":
            return proc
    proc.wait()
    pytest.fail(f"the CLI never reached the pause: {proc.stderr.read()}")


@pytest.mark.slow
def test_kill_9_half_way_through_an_export_leaves_the_previous_one(run_cli, imported, store_path, tmp_path):
    out = tmp_path / "out"
    assert run_cli("export", "--out", out).exit_code == 0
    previous = tree(out)
    with Store.open(store_path) as store:  # something new, so the next export differs
        store.add_architecture(anb_arch("smallest"), {"source": "test"})
    proc = start_paused(tmp_path, "anbench.export_dir", "_write_file", 3,
                        "--store", store_path, "export", "--out", out, "--overwrite")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tree(out) == previous
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.export-")]
    assert len(leftovers) == 1 and len(list(leftovers[0].glob("result_*.json"))) == 3

    done = run_cli("export", "--out", out, "--overwrite")  # the next export clears the dead one's folder
    assert done.exit_code == 0 and "wrote 6 result files" in done.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.export-")]
    assert sorted(tree(out)) == sorted([*previous, "result_1712.json"])


@pytest.mark.slow
def test_kill_9_half_way_through_a_first_export_leaves_nothing(run_cli, imported, store_path, tmp_path):
    out = tmp_path / "new"
    proc = start_paused(tmp_path, "anbench.export_dir", "_write_file", 2, "--store", store_path, "export", "--out", out)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_half_way_through_an_export_is_one_line_and_cleans_up(run_cli, imported, store_path, tmp_path):
    out = tmp_path / "out"
    assert run_cli("export", "--format", "csv", "--out", out).exit_code == 0
    previous = tree(out)
    proc = start_paused(tmp_path, "anbench.export_dir", "_write_file", 0,
                        "--store", store_path, "export", "--format", "csv", "--out", out, "--overwrite")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stderr.strip().splitlines() == ["error: interrupted"]
    assert tree(out) == previous
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


@pytest.mark.slow
@pytest.mark.parametrize("module,function,pause_after,stored", [
    ("anbench.importer", "parse_record", 2, "old"),  # reading the files
    ("anbench.store", "Store.add_results", 1, "old"),  # between the two result batches, inside the transaction
    ("anbench.importer", "ImportSummary.lines", 0, "new"),  # committed, nothing printed yet
], ids=["while-reading", "inside-transaction", "after-commit"])
def test_kill_9_during_an_import_leaves_old_or_new_state_never_doubles(run_cli, store_path, tmp_path, module, function,
                                                                        pause_after, stored):
    assert run_cli("import", anb.write_dir(tmp_path / "first", {1710: anb.RESULT_1710})).exit_code == 0
    old = snapshot(store_path)
    folder = anb.write_dir(tmp_path / "anb", anb.ALL)
    proc = start_paused(tmp_path, module, function, pause_after, "--store", store_path, "import", folder)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    now = snapshot(store_path)
    full = (old[1] + 3, old[2] + 5 + 26 - 7)  # result_1710 was stored already: 1 training + 6 devices
    assert now == old if stored == "old" else now[1:] == full
    again = run_cli("import", folder)
    assert again.exit_code == 0
    assert snapshot(store_path)[1:] == full  # nothing doubled
    with Store.open(store_path) as store:
        keys = [r.key for r in store.results()]
        assert len(keys) == len(set(keys))


def anb_arch(name):
    from anbench.searchspace import named

    return named(name)


def test_without_an_atomic_exchange_the_two_renames_still_replace_the_export(run_cli, imported, tmp_path, monkeypatch):
    import anbench.export_dir as export_dir

    out = tmp_path / "out"
    assert run_cli("export", "--out", out).exit_code == 0
    monkeypatch.setattr(export_dir, "_exchange", lambda a, b: False)  # a file system without RENAME_EXCHANGE
    (out / "result_0.json").unlink()  # a file of the earlier export the user removed: nothing to protect
    assert run_cli("export", "--out", out, "--overwrite").exit_code == 0
    assert len(list(out.glob("result_*.json"))) == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def _manifest(out, files):
    out.mkdir()
    (out / "anbench-export.json").write_text(json.dumps({"format": "anbench-export/1", "files": files}))
    return out


def test_a_manifest_naming_files_outside_its_folder_is_foreign_and_nothing_is_removed(run_cli, imported, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    for name in ["../victim.txt", str(victim), ".", "notes.txt"]:
        out = _manifest(tmp_path / f"out{len(name)}", {name: {"sha256": digest, "bytes": 7}})
        result = run_cli("export", "--out", out, "--overwrite")
        assert result.exit_code == 2 and "which no anbench export wrote" in result.stderr, (name, result.output)
        assert victim.read_text() == "keep me"
        assert tree(out) == {"anbench-export.json": (out / "anbench-export.json").read_bytes()}


def test_a_manifest_entry_that_is_not_an_object_counts_as_changed(run_cli, imported, tmp_path):
    out = _manifest(tmp_path / "out", {"result_0.json": "sha"})
    (out / "result_0.json").write_text("{}")
    result = run_cli("export", "--out", out, "--overwrite")
    assert result.exit_code == 2 and "result_0.json changed after anbench exported it" in result.stderr, result.output
    assert (out / "result_0.json").read_text() == "{}"


def test_a_fifo_as_manifest_or_listed_file_never_blocks_the_export(tmp_path):
    from anbench.export_dir import check_target

    fifo_manifest = tmp_path / "a"
    fifo_manifest.mkdir()
    os.mkfifo(fifo_manifest / "anbench-export.json")
    fifo_listed = _manifest(tmp_path / "b", {"result_0.json": {"sha256": "0" * 64, "bytes": 2}})
    os.mkfifo(fifo_listed / "result_0.json")
    outcomes = {}

    def check(out):
        try:
            check_target(out, overwrite=True)
        except AnbenchError as exc:
            outcomes[out.name] = str(exc)

    for out in (fifo_manifest, fifo_listed):
        worker = threading.Thread(target=check, args=(out,), daemon=True)
        worker.start()
        worker.join(60)  # a guard against a hang, not synchronisation: the check never waits on anything
        assert not worker.is_alive(), f"check_target blocked on a FIFO in {out}"
    assert "which no anbench export wrote" in outcomes["a"]
    assert "result_0.json changed after" in outcomes["b"]
