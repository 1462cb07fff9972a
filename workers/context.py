"""What every pipeline step may use, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from gateway.blobstore import BlobStore
from gateway.ledger import Ledger
from gateway.queue import IntakeQueue
from gateway.settings import Settings


@dataclass
class WorkerContext:
    settings: Settings
    connection: redis.Redis
    ledger: Ledger
    blobs: BlobStore
    queue: IntakeQueue

    @classmethod
    def from_settings(cls, settings: Settings, connection: redis.Redis) -> WorkerContext:
        return cls(
            settings=settings,
            connection=connection,
            ledger=Ledger(connection),
            blobs=BlobStore(settings.blob_dir, settings.blob_sync),
            queue=IntakeQueue(connection, settings),
        )
