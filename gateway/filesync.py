"""Making writes durable: one file at a time, or a whole file system at once.

``fsync`` makes one file durable, and a folder's ``fsync`` makes the names in it durable.
``syncfs`` makes every write on a file system durable in one call. The blob store writes a
batch of blobs and needs them all durable before it confirms any, so one ``syncfs`` before
the renames and one after cost less than two ``fsync`` calls for each blob: each of those
waits for a commit of the file system's journal, while the calls of a ``syncfs`` share one.

The standard library has no ``syncfs``; it is called through ``ctypes``, which lets other
threads run Python meanwhile, as ``os.fsync`` does. Linux has had it since 2.6.39 but
reports a failed write-back through it only since 5.8: before that a disk error could pass
unseen, so an older kernel, like a system without the call, makes each file durable alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from collections.abc import Callable


def fsync_folder(path: str) -> None:
    """Make the names in the folder at ``path`` durable (a rename, a new file or folder)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_file_system(path: str) -> None:
    """Make every write on the file system holding ``path`` durable.

    Raises ``OSError`` when the file system reports a failed write, or when this system
    cannot (see :func:`file_system_sync_available`).
    """
    call = _syncfs()
    if call is None:
        raise OSError("syncfs is not available on this system")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if call(fd) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number), path)
    finally:
        os.close(fd)


def file_system_sync_available() -> bool:
    """True where ``syncfs`` exists and reports failed writes (Linux 5.8 and later)."""
    return _syncfs() is not None


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    return _load_syncfs()


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux") or _kernel_version() < (5, 8):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    call: Callable[[int], int] = function
    return call


def _kernel_version() -> tuple[int, int]:
    """``(major, minor)`` of the running kernel; ``(0, 0)`` when it cannot be read."""
    parts = platform.release().split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0
