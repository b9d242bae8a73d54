"""Bad input across the commands: each case is one `error:` line, exit 2, no traceback, and the
store untouched. Every case has its own test id naming the kind of bad input."""

import json
import textwrap
import sqlite3
from pathlib import Path

import pytest

from anbench.searchspace import named
from anbench.store import APPLICATION_ID, SCHEMA_VERSION, Store

B0 = named("efficientnet-b0").to_record()


def _json(record):
    return json.dumps(record)


def _with(**changes):
    return _json({**B0, **changes})


def _without(key):
    return _json({k: v for k, v in B0.items() if k != key})


def _sql(path, *statements):
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def _make_foreign(path):
    _sql(path, "CREATE TABLE notes (body TEXT)")


def _make_marked_but_empty(path):
    _sql(path, f"PRAGMA application_id = {APPLICATION_ID}", f"PRAGMA user_version = {SCHEMA_VERSION}",
         "CREATE TABLE unrelated (x)")


def _make_newer(path):
    Store.open(path).close()
    _sql(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


def _make_garbage(path):
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)


# (test id, arguments after `anbench --store STORE`, stdin, fragment of the error line)
CASES = [
    ("unknown-command", ["frobnicate"], None, "No such command"),
    ("unknown-option", ["measure", "--device", "cpu", "--speed", "9"], None, "No such option"),
    ("sample-negative-count", ["sample", "-n", "-1"], None, "-n"),
    ("sample-non-integer-seed", ["sample", "--seed", "abc"], None, "--seed"),
    ("sample-non-number-macs", ["sample", "--macs-min", "lots"], None, "--macs-min"),
    ("sample-impossible-constraints", ["sample", "-n", "1", "--macs-min", "500", "--macs-max", "400"], None,
     "no architecture satisfies"),
    ("sample-unknown-format", ["sample", "--format", "yaml"], None, "--format"),
    ("arch-malformed-json", ["arch", "info", '{"block0_e": 1,'], None, "not valid JSON"),
    ("arch-kernel-7", ["arch", "info", _with(block3_k=7)], None, "block3_k"),
    ("arch-missing-key", ["arch", "info", _without("block2_se")], None, "block2_se"),
    ("arch-bool-for-int", ["arch", "info", _with(block1_e=True)], None, "block1_e"),
    ("arch-int-for-bool", ["arch", "info", _with(block1_se=1)], None, "block1_se"),
    ("arch-string-for-int", ["arch", "info", _with(block0_l="2")], None, "block0_l"),
    ("arch-block5-l5", ["arch", "info", _with(block5_l=5)], None, "block5_l"),
    ("arch-unknown-key", ["arch", "info", _json({**B0, "block7_e": 1})], None, "block7_e"),
    ("arch-not-an-object", ["arch", "info", "[1, 2]"], None, "ARCH"),
    ("arch-unknown-name", ["arch", "info", "efficientnet-b7"], None, "not a JSON object, a file"),
    ("arch-missing-file", ["arch", "info", "no/such/file.json"], None, "not a JSON object, a file"),
    ("arch-binary-file", ["arch", "info", "@binary"], None, "cannot read architecture file"),
    ("arch-empty-stdin", ["arch", "info", "-"], "", "no architecture given"),
    ("arch-bad-stdin-line", ["arch", "info", "-"], _json(B0) + "\n{oops\n", "stdin line 2"),
    ("arch-unknown-id-prefix", ["arch", "info", "deadbeef"], None, "no stored architecture"),
    ("measure-unknown-device", ["measure", "--device", "quantum", "--arch", "smallest"], None, "quantum"),
    ("measure-nothing-given", ["measure", "--device", "cpu"], None, "nothing to measure"),
    ("measure-zero-batch", ["measure", "--device", "cpu", "--arch", "smallest", "--batch-size", "0"], None,
     "--batch-size"),
    ("measure-batch-too-big-for-memory", ["measure", "--device", "cpu", "--arch", "efficientnet-b0",
                                          "--batch-size", "100000000"], None, "smaller --batch-size"),
    ("measure-tiny-resolution", ["measure", "--device", "cpu", "--arch", "smallest", "--resolution", "8"], None,
     "--resolution"),
    ("measure-huge-resolution", ["measure", "--device", "cpu", "--arch", "smallest", "--resolution", "100000"], None,
     "--resolution"),
    ("measure-unknown-activation", ["measure", "--device", "cpu", "--arch", "smallest", "--activation", "gelu"], None,
     "--activation"),
    ("measure-unsupported-precision", ["measure", "--device", "cpu", "--arch", "smallest", "--precision", "fp64",
                                       "--resolution", "32", "--batch-size", "1"], None, "fp32 only"),
    ("measure-negative-warmup", ["measure", "--device", "cpu", "--arch", "smallest", "--warmup", "-1"], None,
     "--warmup"),
    ("compile-unknown-target", ["compile", "--target", "stratix10", "--arch", "smallest"], None, "stratix10"),
    ("compile-nothing-given", ["compile", "--target", "zcu102"], None, ""),
    ("results-unknown-stage", ["results", "--stage", "deploy"], None, "--stage"),
    ("export-out-is-a-file", ["export", "--format", "csv", "--out", "@file"], None, "not a directory"),
    ("export-unknown-format", ["export", "--format", "parquet", "--out", "x"], None, "--format"),
    ("import-missing-folder", ["import", "no/such/folder"], None, "does not exist"),
    ("import-pending-not-a-side-file", ["import", "--format", "pending", "@file"], None, "pending-result"),
    ("store-backup-over-existing", ["store", "backup", "@file"], None, "exists"),
]

# stores that are not usable: (test id, how to make the file)
BAD_STORES = [
    ("store-random-bytes", lambda p: p.write_bytes(bytes(range(256)) * 40)),
    ("store-sqlite-header-then-garbage", _make_garbage),
    ("store-foreign-sqlite", _make_foreign),
    ("store-marked-but-no-tables", _make_marked_but_empty),
    ("store-newer-schema", _make_newer),
    ("store-is-a-directory", lambda p: p.mkdir()),
]


def _resolve(arg, tmp_path):
    if arg == "@file":
        path = tmp_path / "plain-file.json"
        path.write_text("just text\n")
        return str(path)
    if arg == "@dir":
        return str(tmp_path / "out-dir")
    if arg == "@binary":
        path = tmp_path / "binary.json"
        path.write_bytes(b"\x00\x01\x02\xff binary")
        return str(path)
    return arg


def assert_one_error_line(result):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("name, args, stdin, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(name, args, stdin, fragment, run_cli, store_path, tmp_path):
    with Store.open(store_path) as store:
        store.add_architecture(named("smallest"))
    before = _content(store_path)
    result = run_cli(*[_resolve(a, tmp_path) for a in args], input=stdin)
    line = assert_one_error_line(result)
    assert fragment in line, line
    assert _content(store_path) == before  # a refused command leaves the store's content as it was


def _content(path):
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.mark.parametrize("name, make", BAD_STORES, ids=[c[0] for c in BAD_STORES])
def test_an_unusable_store_is_one_line_and_left_untouched(name, make, run_cli, tmp_path):
    path = tmp_path / "bad.db"
    make(path)
    snapshot = None if path.is_dir() else path.read_bytes()
    for args in (["results"], ["measure", "--device", "cpu", "--arch", "smallest"], ["store", "check"]):
        line = assert_one_error_line(run_cli("--store", path, *args, store=False))
        assert str(path) in line
    if snapshot is not None:
        assert path.read_bytes() == snapshot
        assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_ctrl_c_while_the_commands_load_is_one_line_and_exit_130(tmp_path):
    import subprocess
    import sys

    # KeyboardInterrupt where the real one lands: while a command module is being imported
    code = textwrap.dedent("""
        import sys

        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "anbench.cli.measure_cmd":
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, CtrlC())
        from anbench.cli import main
        sys.argv = ["anbench", "--store", sys.argv[1], "results"]
        main()
    """)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.db")], capture_output=True, text=True,
                          timeout=300)
    assert (done.returncode, done.stderr) == (130, "error: interrupted\n"), done.stderr
