"""Durable, content-addressed storage for raw input and attachments.

A blob is named by the sha256 of its bytes, so storing the same bytes twice is free and a
record can always be traced back to exactly what arrived. Writes go to a temporary file
that is fsynced and renamed into place, then the directory is fsynced: once ``put``
returns, the bytes survive a crash or power cut.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from gateway.errors import StorageError


class BlobStore:
    """A directory of blobs, fanned out by the first bytes of their hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[Path] = set()  # fan-out folders known to exist

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if target.exists():
            return digest
        try:
            if target.parent not in self._made:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(target.parent)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
            _fsync_dir(target.parent)
        except OSError as exc:
            self._made.discard(target.parent)
            raise StorageError(f"blob store write failed: {exc.strerror or exc}") from exc
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
