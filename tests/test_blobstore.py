"""The blob store keeps exactly the bytes it was given, once, and leaves nothing half-written."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import threading
from pathlib import Path

import pytest

from gateway import blobstore, filesync
from gateway.blobstore import BlobStore, BlobSync
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


def disk_error(*args: object) -> None:
    raise OSError(errno.EIO, "Input/output error")


@pytest.mark.parametrize(
    ("sync", "failing"),
    [
        ("file", "os.fsync"),  # the temporary file's fsync
        ("filesystem", "filesync.sync_file_system"),  # the sync before the rename
    ],
)
def test_a_failed_write_raises_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: BlobSync, failing: str
) -> None:
    store = BlobStore(tmp_path / "blobs", sync)
    store.put(b"an earlier message")
    monkeypatch.setattr(f"gateway.blobstore.{failing}", disk_error)
    with pytest.raises(StorageError, match="Input/output error"):
        store.put(b"this one is not stored")
    assert not store.exists(hashlib.sha256(b"this one is not stored").hexdigest())
    assert len(files_under(tmp_path)) == 1  # the earlier message only: no temporary left
    monkeypatch.undo()
    digest = store.put(b"this one is not stored")  # and the store works again after
    assert store.get(digest) == b"this one is not stored"


@pytest.mark.parametrize("sync", ["file", "filesystem"])
def test_a_failed_sync_after_the_renames_confirms_none_of_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: BlobSync
) -> None:
    """The blobs are whole in place, but their names may not survive a crash: none is
    confirmed, and storing them again (the senders retry) syncs what is there."""
    store = BlobStore(tmp_path / "blobs", sync)
    blobs = [b"first of the batch", b"second of the batch"]
    real = filesync.fsync_folder if sync == "file" else filesync.sync_file_system
    calls: list[str] = []

    def failing_after_renames(path: str) -> None:
        calls.append(path)
        renamed = all(store.exists(hashlib.sha256(blob).hexdigest()) for blob in blobs)
        if renamed:
            raise OSError(errno.EIO, "Input/output error")
        real(path)

    name = "fsync_folder" if sync == "file" else "sync_file_system"
    monkeypatch.setattr(filesync, name, failing_after_renames)
    results = store.put_many(blobs)
    assert all(isinstance(r, StorageError) for r in results) and calls
    monkeypatch.undo()
    calls.clear()
    monkeypatch.setattr(filesync, name, lambda path: (calls.append(path), real(path)))
    assert store.put_many(blobs) == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert calls  # the names found in place were synced before they were confirmed


def test_one_blob_that_cannot_be_stored_leaves_the_others_of_its_batch_stored(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path / "blobs")
    blobs = [b"stored %d" % n for n in range(3)]
    blocked = blobs[1]
    # A file where the blob's fan-out folder should be: the file system refuses the write.
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / hashlib.sha256(blocked).hexdigest()[:2]).write_bytes(b"")
    results = store.put_many(blobs)
    assert isinstance(results[1], StorageError)
    for blob, result in zip(blobs, results, strict=True):
        if blob is not blocked:
            assert result == hashlib.sha256(blob).hexdigest() and store.get(result) == blob
    assert not [p for p in (tmp_path / "blobs").rglob(".tmp-*")]


def test_the_same_bytes_twice_in_one_batch_are_one_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    digest = hashlib.sha256(b"sent twice").hexdigest()
    assert store.put_many([b"sent twice", b"once", b"sent twice"])[::2] == [digest, digest]
    assert len(files_under(tmp_path)) == 2


def test_a_folder_removed_under_the_store_is_made_again(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    first = store.put(b"first")
    (tmp_path / "blobs" / first[:2] / first).unlink()
    (tmp_path / "blobs" / first[:2]).rmdir()
    assert store.get(store.put(b"first")) == b"first"


def test_each_blob_and_the_folders_it_needed_are_fsynced_before_put_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file, its folder and, when the folder is new, the folder's entry in the root:
    each is fsynced, so a confirmed message is not lost with a folder made for it."""
    store = BlobStore(tmp_path / "blobs", "file")
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


def test_a_batch_is_synced_once_before_its_renames_and_once_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two syncs of the file system for the whole batch, not two fsyncs for each blob: the
    bytes are durable before any name points at them, and the names before it returns."""
    if not filesync.file_system_sync_available():
        pytest.skip("this system has no syncfs that reports failed writes")
    store = BlobStore(tmp_path / "blobs", "filesystem")
    events: list[str] = []
    real_sync, real_replace = filesync.sync_file_system, os.replace

    def recording_sync(path: str) -> None:
        events.append("sync")
        real_sync(path)

    def recording_replace(source: str, target: str) -> None:
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(filesync, "sync_file_system", recording_sync)
    monkeypatch.setattr(blobstore.os, "replace", recording_replace)
    monkeypatch.setattr(blobstore.os, "fsync", disk_error)  # never needed here
    blobs = [b"message %d" % n for n in range(8)]
    results = store.put_many(blobs)
    assert events == ["sync", *["rename"] * 8, "sync"]
    assert [store.get(r) for r in results if isinstance(r, str)] == blobs


def test_without_a_usable_syncfs_the_store_fsyncs_each_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filesync, "file_system_sync_available", lambda: False)
    monkeypatch.setattr(filesync, "sync_file_system", disk_error)  # never called
    store = BlobStore(tmp_path / "blobs", "filesystem")
    assert store.sync == "file"
    assert store.get(store.put(b"stored all the same")) == b"stored all the same"


@pytest.mark.parametrize(
    ("release", "usable"),
    [("6.18.44-fc-v669", True), ("5.8.0", True), ("5.10", True), ("5.7.19", False),
     ("4.19.0-17-amd64", False), ("not a version", False)],
)  # fmt: skip
def test_syncfs_is_used_only_where_it_reports_failed_writes(
    monkeypatch: pytest.MonkeyPatch, release: str, usable: bool
) -> None:
    """Linux reports a failed write-back through syncfs only since 5.8."""
    if not sys.platform.startswith("linux"):
        pytest.skip("syncfs is Linux's")
    monkeypatch.setattr(filesync.platform, "release", lambda: release)
    assert (filesync._load_syncfs() is not None) is usable
