"""rq's commands for a record's first job, built by rq once and then filled in per record.

rq builds a job through several layers (a job object, its serializer, its hash, a
pipeline), which at the edge cost more than the rest of ``accept`` put together. From one
record's first job to the next only the record id changes (in the job id, the
description and the serialized arguments) and the time (created, queued). So rq builds
the commands for a made-up probe record once; they become a template with those parts
marked; and each record's commands are the template with its id and the time put in.

The template is checked as it is made: rq builds the commands for a second probe, and
the template filled in for that probe must give exactly them, the time aside. Should a
release of rq put anything else into a job that varies, the check fails and rq builds
every job itself, as before: slower, never wrong.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.typing import EncodableT
from rq.utils import now, utcformat

# Shaped like record ids (26 characters), and like nothing else in a job; never a real
# one, since a ULID has no letter O.
PROBES = ("000000000000000000PROBEONE", "000000000000000000PROBETWO")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@dataclass(frozen=True)
class _Literal:
    """A value that is the same in every record's job."""

    value: EncodableT

    def fill(self, record_id: str, stamp: str) -> EncodableT:
        return self.value


@dataclass(frozen=True)
class _WithId:
    """A text holding the record id."""

    pieces: list[str]

    def fill(self, record_id: str, stamp: str) -> EncodableT:
        return record_id.join(self.pieces)


@dataclass(frozen=True)
class _CompressedWithId:
    """Compressed bytes holding the record id: the job's serialized call."""

    pieces: list[bytes]

    def fill(self, record_id: str, stamp: str) -> EncodableT:
        return zlib.compress(record_id.encode().join(self.pieces))


@dataclass(frozen=True)
class _Stamp:
    """The time, as rq writes it."""

    def fill(self, record_id: str, stamp: str) -> EncodableT:
        return stamp


_Part = _Literal | _WithId | _CompressedWithId | _Stamp


class JobTemplate:
    """The commands that queue a record's first job, with the record id and time left out."""

    def __init__(self, parts: Sequence[_Part]) -> None:
        self.parts = list(parts)

    @classmethod
    def build(cls, commands_for: Callable[[str], list[EncodableT]]) -> JobTemplate | None:
        """The template of what ``commands_for(record_id)`` returns (rq's own commands),
        or None when filling it in would not give exactly what rq gives."""
        first, second = PROBES
        template = cls([_part(value, first) for value in commands_for(first)])
        expected = commands_for(second)
        if len(template.parts) != len(expected):
            return None
        for part, wanted in zip(template.parts, expected, strict=True):
            if isinstance(part, _Stamp):
                if not (isinstance(wanted, str) and STAMP.fullmatch(wanted)):
                    return None
                continue
            value = part.fill(second, "")
            if type(value) is not type(wanted) or value != wanted:
                return None
        return template

    def fill(self, record_id: str) -> list[EncodableT]:
        """The commands for ``record_id``'s first job, queued now."""
        stamp = utcformat(now())
        return [part.fill(record_id, stamp) for part in self.parts]


def _part(value: EncodableT, probe: str) -> _Part:
    if isinstance(value, str):
        if probe in value:
            return _WithId(value.split(probe))
        if STAMP.fullmatch(value):
            return _Stamp()
    elif isinstance(value, bytes):
        try:
            data = zlib.decompress(value)
        except zlib.error:
            data = b""
        if probe.encode() in data:
            return _CompressedWithId(data.split(probe.encode()))
    return _Literal(value)
