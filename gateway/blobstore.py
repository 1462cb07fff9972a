"""Durable, content-addressed storage for raw input and attachments.

A blob is named by the sha256 of its bytes, so storing the same bytes twice is free and a
record can always be traced back to exactly what arrived. Writes go to a temporary file
that is fsynced and renamed into place, then the directory is fsynced: once ``put``
returns, the bytes survive a crash or power cut.

Blobs are fanned out over 256 folders by the first byte of their hash, as git fans out
its objects: a folder holds a few tens of thousands of files at ten million blobs, which
the file system indexes, and the folders all exist after the first few thousand messages,
so a message seldom pays for making one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from contextlib import suppress
from pathlib import Path

from gateway.errors import StorageError


class BlobStore:
    """A directory of blobs, fanned out by the first byte of their hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self._made: set[str] = set()  # fan-out folders known to exist

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its sha256.

        Written with the os module's calls on path strings: at the edge this runs for
        every message, and pathlib and tempfile cost more than the writing itself.
        """
        digest = hashlib.sha256(data).hexdigest()
        folder = os.path.join(self._root, digest[:2])
        target = os.path.join(folder, digest)
        if os.path.exists(target):
            return digest
        try:
            if folder not in self._made:
                self._make(folder)
            try:
                _write_durably(folder, target, data)
            except FileNotFoundError:  # the folder was removed since: make it again
                self._make(folder)
                _write_durably(folder, target, data)
        except OSError as exc:
            self._made.discard(folder)
            raise StorageError(f"blob store write failed: {exc.strerror or exc}") from exc
        return digest

    def _make(self, folder: str) -> None:
        """Make a fan-out folder; a new one's entry is fsynced in the root as well, or a
        crash could lose the folder with the blobs already confirmed in it."""
        try:
            os.makedirs(folder)
        except FileExistsError:
            pass
        else:
            _fsync_dir(self._root)
        self._made.add(folder)

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()


def _write_durably(folder: str, target: str, data: bytes) -> None:
    """Write ``data`` to a new file in ``folder``, fsync it, rename it to ``target`` and
    fsync the folder, so that once this returns the file survives a crash."""
    temporary = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_dir(folder)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
