"""Put a whole export folder in place atomically, with a manifest; never remove foreign files.

Contract of :func:`write_export_dir`:

* The files are written into a temporary folder beside the target
  (``.<name>.export-<random>``), then the manifest ``anbench-export.json`` (file names,
  sha256, sizes, counts, anbench version, store fingerprint), then the folder is put in
  place by one rename (an atomic exchange with ``renameat2(RENAME_EXCHANGE)`` where the
  kernel has it, else two renames, between which the target is briefly absent). A process
  killed or interrupted at any point leaves the target holding the previous export (or
  nothing), never a mix. An error or Ctrl-C removes the temporary folder; a ``kill -9``
  leaves it beside the target, and the next export into that target removes it (it holds
  only files anbench wrote, and a marker naming the dead writer). Files are not fsynced
  (that would cost more than the export): the guarantee covers killed processes, not a
  power cut.
* Files and folders get the usual permissions (the process umask), not 0600.
* The target may be missing, an empty folder, or a folder holding exactly an earlier
  anbench export (its manifest and the files the manifest lists, unchanged). Replacing
  an earlier export needs ``overwrite``. Anything else in the folder (files no export
  wrote, or export files changed since) is refused with one line: anbench never removes
  a file it did not write itself. After the swap the earlier export's files (those its
  manifest lists) are removed; anything unexpected found there is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import AnbenchError

MANIFEST = "anbench-export.json"
MANIFEST_FORMAT = "anbench-export/1"
_MARKER = ".anbench-export-in-progress"  # first file of a temporary folder: who writes it
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass
class Placed:
    """What :func:`write_export_dir` did."""

    out_dir: Path
    files: int = 0
    replaced: int = 0  # files of an earlier export that were replaced
    manifest: dict[str, Any] = field(default_factory=dict)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets under the current umask."""
    return 0o666 & ~_umask()


def _sha256_file(path: Path) -> str | None:
    try:
        # O_NONBLOCK: a FIFO under an exported name must not hang the export
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of an anbench export in ``folder``; None when there is none or it is not ours."""
    from .record_files import read_json_record

    try:
        # a hostile folder may hold a FIFO, a device or a huge file under the manifest's name
        data = read_json_record(folder / MANIFEST, os.path.realpath(folder), max_bytes=64 << 20)
    except AnbenchError:
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("files"), dict):
        return None
    return data


def _listed_name(name: str) -> bool:
    """Whether a manifest may list ``name``: a plain file name an export writes. Anything else
    (``../victim``, ``/etc/x``, ``.``) would make --overwrite remove a file outside the export."""
    from .export import CSV_NAME, RESULT_FILE

    return os.path.basename(name) == name and name not in ("", ".", "..") and \
        (bool(RESULT_FILE.fullmatch(name)) or name == CSV_NAME)


def _names(names: list[str], few: int = 3) -> str:
    shown = ", ".join(sorted(names)[:few])
    return shown + (f" and {len(names) - few} more" if len(names) > few else "")


def check_target(out_dir: Path, overwrite: bool) -> dict[str, Any] | None:
    """Refuse a target that is not missing, empty or an earlier export; its manifest if one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AnbenchError(f"--out {out_dir} exists and is not a directory")
    if not out_dir.exists():
        return None
    try:
        entries = os.listdir(out_dir)
    except OSError as exc:
        raise AnbenchError(f"cannot read --out directory {out_dir}: {exc.strerror or exc}") from None
    if not entries:
        return None
    manifest = read_manifest(out_dir)
    if manifest is not None and not all(_listed_name(n) for n in manifest["files"]):
        manifest = None  # not a manifest anbench wrote: the folder is foreign
    if manifest is None:
        raise AnbenchError(f"--out {out_dir} holds {_names(entries)}, which no anbench export wrote; "
                           f"export into a new or empty folder (anbench never removes files it did not write)")
    foreign = [name for name in entries if name != MANIFEST and name not in manifest["files"]]
    if foreign:
        raise AnbenchError(f"--out {out_dir} holds {_names(foreign)} besides an earlier export; move "
                           f"{'it' if len(foreign) == 1 else 'them'} away or export elsewhere "
                           f"(anbench never removes files it did not write)")
    if not overwrite:
        raise AnbenchError(f"--out {out_dir} holds an earlier anbench export ({len(manifest['files'])} files); "
                           f"pass --overwrite to replace it or choose a new folder")
    changed = [name for name, entry in manifest["files"].items()
               if not isinstance(entry, dict)
               or ((out_dir / name).exists() and _sha256_file(out_dir / name) != entry.get("sha256"))]
    if changed:
        raise AnbenchError(f"--out {out_dir}: {_names(changed)} changed after anbench exported "
                           f"{'it' if len(changed) == 1 else 'them'}; move the folder away or export elsewhere")
    return manifest


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _remove_export(folder: Path, names: Iterable[str]) -> None:
    """Remove the files anbench wrote in ``folder`` (``names``, the manifest, the marker), then
    the folder if that left it empty; anything else stays."""
    for name in [*names, MANIFEST, _MARKER]:
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass
        except OSError:
            return
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _temp_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.export-"


def _remove_stale_temps(out_dir: Path) -> None:
    """Temporary folders of exports into ``out_dir`` that were killed (their writer is gone)."""
    try:
        siblings = [p for p in out_dir.parent.iterdir() if p.name.startswith(_temp_prefix(out_dir)) and p.is_dir()]
    except OSError:
        return
    for folder in siblings:
        try:
            host, _, pid = (folder / _MARKER).read_text().partition(" ")
            if host != socket.gethostname() or _alive(int(pid)):
                continue
            names = [n for n in os.listdir(folder) if n != _MARKER]
        except (OSError, ValueError):
            continue
        manifest = read_manifest(folder)
        if all(_ours(n, manifest) for n in names):
            _remove_export(folder, names)


def _ours(name: str, manifest: dict | None) -> bool:
    return _listed_name(name) or name == MANIFEST or (manifest is not None and name in manifest["files"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_file(path: Path, data: bytes) -> None:
    """One file of the export; a seam the kill tests patch to stop an export half-way."""
    with open(path, "wb") as handle:
        handle.write(data)


def write_export_dir(out_dir: str | os.PathLike, files: Iterable[tuple[str, bytes]], overwrite: bool,
                     manifest_fields: dict[str, Any] | Callable[[], dict[str, Any]]) -> Placed:
    """Write ``files`` (name, bytes) as the export folder ``out_dir`` (module contract).

    ``files`` is iterated only once the target has passed :func:`check_target`, so a
    generator renders nothing for a refused target; ``manifest_fields`` may be a function,
    called once every file is written (e.g. counts made while rendering)."""
    out_dir = Path(os.path.abspath(out_dir))  # "." and "x/.." name their folder: the temp folder goes beside it
    if out_dir.is_symlink() and out_dir.is_dir():
        out_dir = out_dir.resolve()  # replace the folder it points to, keep the link
    if not out_dir.name:
        raise AnbenchError(f"--out {out_dir} is the root folder; export into a folder of its own")
    previous = check_target(out_dir, overwrite)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnbenchError(f"cannot create the folder of --out {out_dir}: {exc.strerror or exc}") from None
    _remove_stale_temps(out_dir)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir), dir=parent))
    except OSError as exc:
        raise AnbenchError(f"cannot write beside --out {out_dir}: {exc.strerror or exc}") from None
    placed = Placed(out_dir)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        (tmp / _MARKER).write_text(f"{socket.gethostname()} {os.getpid()}")
        listed: dict[str, dict[str, Any]] = {}
        for name, data in files:
            _write_file(tmp / name, data)
            listed[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        placed.files = len(listed)
        fields = manifest_fields() if callable(manifest_fields) else manifest_fields
        placed.manifest = {"format": MANIFEST_FORMAT, **fields, "files": listed}
        _write_file(tmp / MANIFEST, json.dumps(placed.manifest, indent=1).encode())
        os.unlink(tmp / _MARKER)
        _place(tmp, out_dir, previous)
    except BaseException as exc:
        if tmp.exists():
            _remove_export(tmp, os.listdir(tmp))  # all of it written above
        if isinstance(exc, OSError):
            raise AnbenchError(f"cannot write export {out_dir}: {exc.strerror or exc}") from None
        raise
    placed.replaced = len(previous["files"]) if previous else 0
    return placed


def _place(tmp: Path, out_dir: Path, previous: dict[str, Any] | None) -> None:
    """Put ``tmp`` at ``out_dir``; then remove what was there (only an empty folder or an earlier export)."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    if _exchange(tmp, out_dir):
        old = tmp  # now holds what was at out_dir
    else:
        old = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir), dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
    _remove_export(old, previous["files"] if previous else [])

