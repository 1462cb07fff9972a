"""The blob store keeps exactly the bytes it was given, once, and leaves nothing half-written."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from gateway import blobstore
from gateway.blobstore import BlobStore
from gateway.errors import StorageError


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_bytes_are_kept_under_their_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"From: a@example.net\r\n\r\nThe lift is broken.\r\n" + bytes(range(256)) * 40
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.get(digest) == data and store.exists(digest)
    assert files_under(tmp_path) == [tmp_path / "blobs" / digest[:2] / digest]
    assert store.put(b"") == hashlib.sha256(b"").hexdigest()
    assert store.get(hashlib.sha256(b"").hexdigest()) == b""


def test_the_same_bytes_from_many_threads_make_one_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(200_000)
    digests: list[str] = []
    threads = [threading.Thread(target=lambda: digests.append(store.put(data))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(digests) == {hashlib.sha256(data).hexdigest()} and len(digests) == 16
    assert len(files_under(tmp_path)) == 1 and store.get(digests[0]) == data


def test_a_failed_write_raises_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.put(b"an earlier message")

    def disk_error(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(blobstore.os, "fsync", disk_error)
    with pytest.raises(StorageError, match="Input/output error"):
        store.put(b"this one is not stored")
    assert not store.exists(hashlib.sha256(b"this one is not stored").hexdigest())
    assert len(files_under(tmp_path)) == 1  # the earlier message only: no temporary left
    monkeypatch.undo()
    digest = store.put(b"this one is not stored")  # and the store works again after
    assert store.get(digest) == b"this one is not stored"


def test_a_folder_removed_under_the_store_is_made_again(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    first = store.put(b"first")
    (tmp_path / "blobs" / first[:2] / first).unlink()
    (tmp_path / "blobs" / first[:2]).rmdir()
    assert store.get(store.put(b"first")) == b"first"


def test_a_blob_and_the_folders_it_needed_are_synced_before_put_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file, its folder and, when the folder is new, the folder's entry in the root:
    each is fsynced, so a confirmed message is not lost with a folder made for it."""
    store = BlobStore(tmp_path / "blobs")
    synced: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(blobstore.os, "fsync", recording_fsync)
    first = store.put(b"the first message")
    root, folder = tmp_path / "blobs", tmp_path / "blobs" / first[:2]
    written = [p for p in synced if p.parent == folder and p.name.startswith(".tmp-")]
    assert len(written) == 1 and root in synced and folder in synced
    synced.clear()
    neighbour = next(
        data
        for data in (b"message %d" % n for n in range(10_000))
        if hashlib.sha256(data).hexdigest()[:2] == first[:2]
    )
    store.put(neighbour)
    assert folder in synced and root not in synced  # its folder was there already
