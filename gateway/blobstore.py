"""Durable, content-addressed storage for raw input and attachments.

A blob is named by the sha256 of its bytes, so storing the same bytes twice is free and a
record can always be traced back to exactly what arrived. Each blob is written to a
temporary file, which is made durable and then renamed into place, and the rename is made
durable in turn: once ``put`` returns, the bytes survive a crash or power cut, and a blob
found under its name is always whole.

``put_many`` stores a batch that way with one sync before its renames and one after, not
two per blob (see :mod:`gateway.filesync`). With ``sync="filesystem"``
(``INTAKE_BLOB_SYNC``) each is one ``syncfs`` of the store's file system; with
``sync="file"`` it is an ``fsync`` of each temporary file and of each folder renamed into,
which a store on a file system shared with busy writers may prefer.

Blobs are fanned out over 256 folders by the first byte of their hash, as git fans out
its objects: a folder holds a few tens of thousands of files at ten million blobs, which
the file system indexes, and the folders all exist after the first few thousand messages,
so a message seldom pays for making one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway import filesync
from gateway.errors import StorageError
from gateway.logs import get_logger

log = get_logger("gateway.blobstore")

BlobSync = Literal["filesystem", "file"]


@dataclass
class _Write:
    """A blob written to its temporary file, not yet in place."""

    indexes: list[int]  # the items of the batch it stores (the same bytes may come twice)
    folder: str
    temporary: str
    target: str


class BlobStore:
    """A directory of blobs, fanned out by the first byte of their hash."""

    def __init__(self, root: Path, sync: BlobSync = "filesystem") -> None:
        self.root = root
        self._root = str(root)
        self._made: set[str] = set()  # fan-out folders known to exist
        if sync == "filesystem" and not filesync.file_system_sync_available():
            log.warning("blobstore.file_sync", reason="syncfs_unavailable")
            sync = "file"
        self.sync: BlobSync = sync

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its sha256."""
        (result,) = self.put_many([data])
        if isinstance(result, StorageError):
            raise result
        return result

    def put_many(self, blobs: Sequence[bytes]) -> list[str | StorageError]:
        """Store each of ``blobs`` durably; for each, in order, its sha256, or the error
        that kept it out, which leaves the others unaffected.

        Written with the os module's calls on path strings: at the edge this runs for
        every message, and pathlib and tempfile cost more than the writing itself.
        """
        results: list[str | StorageError] = []
        writes: dict[str, _Write] = {}
        named: set[str] = set()  # folders whose names must be durable before returning
        for index, data in enumerate(blobs):
            digest = hashlib.sha256(data).hexdigest()
            results.append(digest)
            folder = os.path.join(self._root, digest[:2])
            target = os.path.join(folder, digest)
            if target in writes:
                writes[target].indexes.append(index)
            elif os.path.exists(target):
                # Whole, but perhaps renamed by a batch still syncing: synced here too.
                named.add(folder)
            else:
                try:
                    temporary = self._write_temporary(folder, data, named)
                except OSError as exc:
                    results[index] = _storage_error(exc)
                else:
                    writes[target] = _Write([index], folder, temporary, target)
        placed = self._place(list(writes.values()), results)
        named.update(write.folder for write in placed)
        if named:
            try:
                self._sync_names(named)
            except OSError as exc:
                # The files stay where they are: whole, and made durable by a later sync.
                error = _storage_error(exc)
                results = [error if isinstance(r, str) else r for r in results]
        return results

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def _write_temporary(self, folder: str, data: bytes, named: set[str]) -> str:
        """Write ``data`` to a new temporary file in ``folder``; its path. A fan-out folder
        made for it puts the root among the ``named`` folders."""
        try:
            if folder not in self._made:
                self._make(folder, named)
            try:
                return self._write_file(folder, data)
            except FileNotFoundError:  # the folder was removed since: make it again
                self._make(folder, named)
                return self._write_file(folder, data)
        except OSError:
            self._made.discard(folder)
            raise

    def _make(self, folder: str, named: set[str]) -> None:
        try:
            os.makedirs(folder)
        except FileExistsError:
            pass
        else:
            named.add(self._root)  # or a crash could lose the folder with its blobs
        self._made.add(folder)

    def _write_file(self, folder: str, data: bytes) -> str:
        temporary = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.sync == "file":
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        return temporary

    def _place(self, writes: list[_Write], results: list[str | StorageError]) -> list[_Write]:
        """Rename the written files into place once their bytes are durable; the writes
        placed. Any that fail have their error put in ``results``, and leave no file."""
        if writes and self.sync == "filesystem":
            try:
                filesync.sync_file_system(self._root)
            except OSError as exc:
                _fail(writes, results, _storage_error(exc))
                return []
        placed: list[_Write] = []
        for write in writes:
            try:
                os.replace(write.temporary, write.target)
            except OSError as exc:
                _fail([write], results, _storage_error(exc))
            else:
                placed.append(write)
        return placed

    def _sync_names(self, folders: Iterable[str]) -> None:
        if self.sync == "filesystem":
            filesync.sync_file_system(self._root)
        else:
            # The root last: a new fan-out folder is named there once its own names are.
            for folder in sorted(folders, key=lambda path: path == self._root):
                filesync.fsync_folder(folder)


def _fail(writes: list[_Write], results: list[str | StorageError], error: StorageError) -> None:
    for write in writes:
        with suppress(OSError):
            os.unlink(write.temporary)
        for index in write.indexes:
            results[index] = error


def _storage_error(exc: OSError) -> StorageError:
    error = StorageError(f"blob store write failed: {exc.strerror or exc}")
    error.__cause__ = exc
    return error
