"""Reading one JSON record file from a folder that may hold hostile entries.

Contract of :func:`read_json_record`: it returns the decoded JSON value of a regular file,
or raises :class:`AnbenchError` with one line ``"<file name>: <why>"``. It never blocks
and never reads more than ``max_bytes + 1`` bytes:

* anything but a regular file (FIFO, directory, device, socket) is refused from its
  ``stat`` before it is opened, and the file is opened with ``O_NONBLOCK`` and checked
  again on the open descriptor (it may have been swapped in between);
* a symlink is followed only when its target lies inside the folder (``/dev/zero`` or
  ``/etc/passwd`` behind ``result_1.json`` are refused); a broken one is refused;
* a file over ``max_bytes`` is refused (a released record is about 1.3 kB);
* text that is not UTF-8 or not JSON, numbers that are not finite doubles (``1e400``,
  ``10**400``, ``NaN``, ``Infinity``) and nesting deeper than :data:`MAX_NESTING` are
  refused without a traceback (:func:`check_value`; a caller that validates the shape of
  every value itself may do that part, see ``deep_check``).
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

from .errors import AnbenchError

DEFAULT_MAX_RECORD_BYTES = 1 << 20
# A released record nests 3 deep; an anbench export's provenance block a few more.
MAX_NESTING = 32
_FLOAT_MAX = sys.float_info.max

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class _Refused(Exception):
    """Why a file is refused; the caller prefixes the file name."""


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _parse_constant(text: str) -> Any:
    raise _Refused(f"{text} is not a finite number")


# Built once: json.loads(text, parse_constant=...) builds a decoder per call, which costs
# a large import a fifth of its parse time.
_DECODER = json.JSONDecoder(parse_constant=_parse_constant)


def decode(text: str) -> Any:
    """``json.loads`` that refuses (``_Refused``) NaN/Infinity, integers too long to convert and
    runaway nesting (RecursionError); other number ranges are :func:`check_value`'s job."""
    try:
        # no parse_int/parse_float hooks: they would double the parse time of a large import
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _Refused(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise _Refused(f"nested deeper than a record can be (limit {MAX_NESTING})") from None
    except ValueError as exc:  # an integer over Python's digit limit
        raise _Refused(f"a number is not a finite double ({str(exc).split(':')[0]})") from None


def finite(value: Any) -> bool:
    """Whether ``value`` is an int or float that a double holds as a finite number (no bools)."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and -_FLOAT_MAX <= value <= _FLOAT_MAX


def check_value(value: Any, limit: int = MAX_NESTING, where: str = "") -> None:
    """Refuse (AnbenchError, naming ``where``) nesting deeper than ``limit`` and numbers that
    are not finite doubles anywhere in ``value``; iterative, so no input can exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise AnbenchError(f"{where}nested deeper than a record can be (limit {limit})")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and not finite(item):
            shown = repr(item) if isinstance(item, float) else f"{str(item)[:20]}... ({len(str(item))} digits)"
            raise AnbenchError(f"{where}number {shown} is not a finite double")


def _open_checked(path: str, folder_real: str, max_bytes: int) -> tuple[int, int]:
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            if os.path.commonpath([folder_real, target]) != folder_real:
                raise _Refused(f"a symlink to {target}, outside the folder")
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise _Refused(f"a broken symlink (to {target})") from None
    except OSError as exc:
        raise _Refused(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _Refused(f"{_kind(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        raise _Refused(f"{st.st_size} bytes, over the limit of {max_bytes} (--max-record-bytes)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Refused(f"cannot read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # swapped for something else after the stat above
        os.close(fd)
        raise _Refused("not a regular file")
    return fd, st.st_size


def _read_up_to(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes of ``fd``: fewer only at end of file."""
    chunks, left = [], count
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_json_record(path: Path, folder_real: str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                     deep_check: bool = True) -> Any:
    """The JSON value in ``path`` (a file of the folder whose realpath is ``folder_real``); see the
    module contract. ``deep_check=False`` leaves :func:`check_value` to a caller that validates
    the shape of the value itself (and checks its free-form parts)."""
    try:
        fd, size = _open_checked(os.fspath(path), folder_real, max_bytes)
        try:
            # ask for the size the file has (a read allocates what it asks for up front) and
            # one byte more, then, only if it grew since the stat, for what is left up to the limit
            data = _read_up_to(fd, min(size, max_bytes) + 1)
            if len(data) > size:
                data += _read_up_to(fd, max_bytes + 1 - len(data))
        except OSError as exc:
            raise _Refused(f"cannot read: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        if len(data) > max_bytes:  # grew after the stat
            raise _Refused(f"over the limit of {max_bytes} bytes (--max-record-bytes)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        value = decode(text)
    except _Refused as exc:
        raise AnbenchError(f"{path.name}: {exc}") from None
    if deep_check:
        check_value(value, where=f"{path.name}: ")
    return value
