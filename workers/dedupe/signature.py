"""A message's text as a MinHash signature, and the LSH bands that index it.

Near-duplicates are texts whose word sets overlap heavily: the signature estimates the
Jaccard similarity of two texts' shingles (datasketch's MinHash, 128 permutations), and
the LSH bands let a lookup find candidates without comparing against every stored text.

Shingles are the words and the pairs of adjacent words. Words alone would make any two
complaints about a boiler look alike; longer word runs make a few changed words cost too
much (three changed words in sixty drop 3-word shingles to a similarity near 0.7). Pairs
plus words keep an edited repeat above 0.8 while unrelated texts stay far below, and they
cost a tenth of character shingles, which matters for long letters. A short text such as
"still no heating" is a handful of shingles: an exact repeat still scores 1.0, and one
added word already drops it to about 0.7, so short texts match only when nearly identical.

Quoted replies are left out (lines starting with ``>`` and everything after an
"Original Message" or "On ... wrote:" line), so that two replies quoting the same
acknowledgement do not look alike. Only the first ``MAX_WORDS`` words count: the cost stays
bounded for very long letters, and a repeat is recognisable well before its end.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import struct
import sys
import threading
import zlib
from itertools import pairwise
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datasketch.minhash import MinHash

NUM_PERM = 128
SEED = 1
# 16 bands of 8 rows use all 128 values. A pair of texts with similarity s shares at least
# one band with probability 1 - (1 - s**8)**16: 0.95 at 0.8, 0.9996 at 0.9, 0.06 at 0.5.
BANDS = 16
ROWS = 8
MAX_WORDS = 1000

_WORD = re.compile(r"\w+")
_ASCII_WORD = re.compile(rb"\w+")  # the same words as ``_WORD`` in ASCII text
_QUOTE_START = re.compile(
    r"^\s*(?:-{2,}\s*original message\s*-{2,}|on\b.{0,300}\bwrote:)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def _datasketch_module(name: str) -> ModuleType:
    """One of datasketch's modules, loaded without running the package's ``__init__``.

    ``import datasketch`` imports every sketch the package offers, and its LSH classes
    import scipy: some 70 MB of a worker's memory and most of its start-up, for code the
    gateway never runs (its LSH index lives in Redis, see ``index.py``). Only ``minhash``
    and the ``hashfunc`` it imports are loaded here, under their own names, so that a
    later ``import datasketch`` anywhere in the process finds and reuses them.
    """
    qualified = f"datasketch.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    package = importlib.util.find_spec("datasketch")
    if package is None or not package.submodule_search_locations:
        raise ImportError("datasketch is not installed")
    location = f"{next(iter(package.submodule_search_locations))}/{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, location)
    if spec is None or spec.loader is None:
        raise ImportError(f"datasketch has no module {name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[qualified]
        raise
    return module


_datasketch_module("hashfunc")
_MinHash: type[MinHash] = _datasketch_module("minhash").MinHash
# Built once: a MinHash's permutations are the costly part of creating one.
_TEMPLATE = _MinHash(num_perm=NUM_PERM, seed=SEED)
_reusable = threading.local()


_SIZE = NUM_PERM * 4  # bytes: little-endian uint32 values
_BAND_ORDER = struct.Struct(f"<{NUM_PERM}I"), struct.Struct(f">{NUM_PERM}I")
# Per 32-bit lane of a signature as one little-endian integer: all bits but the top one,
# and the top one.
_LOW = int.from_bytes(b"\xff\xff\xff\x7f" * NUM_PERM, "little")
_HIGH = int.from_bytes(b"\x00\x00\x00\x80" * NUM_PERM, "little")


class Signature:
    """The MinHash values of one text (uint32, NUM_PERM of them).

    Kept as the little-endian bytes the index stores, the values as an array only when
    asked for: a lookup reads many signatures and only compares them, which works on the
    bytes as one large integer (``similarity``) and makes no array.
    """

    __slots__ = ("_bands", "_number", "_packed", "_values", "_words")

    def __init__(
        self, values: np.ndarray | None, words: int = 0, packed: bytes | None = None
    ) -> None:
        self._values = values
        self._packed = packed
        self._number: int | None = None
        self._bands: list[str] | None = None
        self._words = words

    @property
    def words(self) -> int:
        """Words in the text it was made from; not kept in the index."""
        return self._words

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = np.frombuffer(self.to_bytes(), dtype="<u4").astype(np.uint32)
        return self._values

    def to_bytes(self) -> bytes:
        if self._packed is None:
            self._packed = self.values.astype("<u4").tobytes()
        return self._packed

    @classmethod
    def from_bytes(cls, data: bytes, words: int = 0) -> Signature:
        return cls(None, words, bytes(data))

    def similarity(self, other: Signature) -> float:
        """MinHash's estimate of the Jaccard similarity (as ``MinHash.jaccard``): the share
        of values that are equal.

        The values that differ are the 32-bit lanes of the two integers' XOR that are not
        zero; adding 0x7fffffff to a lane's low 31 bits carries into its top bit exactly
        when they are not all zero, and never into the next lane.
        """
        if len(self.to_bytes()) != _SIZE or len(other.to_bytes()) != _SIZE:
            return float(np.count_nonzero(self.values == other.values)) / NUM_PERM
        apart = self._integer() ^ other._integer()
        differ = (((apart & _LOW) + _LOW) | apart) & _HIGH
        return (NUM_PERM - differ.bit_count()) / NUM_PERM

    def _integer(self) -> int:
        if self._number is None:
            self._number = int.from_bytes(self.to_bytes(), "little")
        return self._number

    @property
    def bands(self) -> list[str]:
        """One key part per band: the band's number and a hash of its values.

        As datasketch's LSH does, a band is its slice of values as big-endian bytes; the
        bytes are hashed to keep Redis keys short.
        """
        if self._bands is None:
            if len(self.to_bytes()) == _SIZE:
                little, big = _BAND_ORDER
                data = big.pack(*little.unpack(self.to_bytes()))
            else:
                data = self.values.byteswap().tobytes()
            width = ROWS * 4
            self._bands = [
                f"{band}:{_hash(data[band * width : (band + 1) * width])}" for band in range(BANDS)
            ]
        return self._bands


def _hash(band: bytes) -> str:
    return hashlib.blake2b(band, digest_size=8).hexdigest()


def comparable_text(subject: str | None, text: str) -> str:
    """The words a repeat would share: the body without quoted replies, else the subject."""
    match = _QUOTE_START.search(text)
    own = text[: match.start()] if match else text
    lines = [line for line in own.splitlines() if not line.lstrip().startswith(">")]
    body = "\n".join(lines)
    return body if _WORD.search(body) else (subject or "")


def shingles(words: list[str]) -> set[bytes]:
    found = {word.encode() for word in words}
    found.update(f"{a} {b}".encode() for a, b in pairwise(words))
    return found


def text_shingles(text: str) -> tuple[set[bytes], int]:
    """The shingles of ``text`` (its first ``MAX_WORDS`` words, case-folded) and how many
    words it has. ASCII text, nearly every message, is split as bytes: for it, ``\\w``
    and case folding agree with their bytes forms, and no word needs encoding."""
    if text.isascii():
        ascii_words = _ASCII_WORD.findall(text.lower().encode())[:MAX_WORDS]
        found = set(ascii_words)
        found.update(a + b" " + b for a, b in pairwise(ascii_words))
        return found, len(ascii_words)
    words = _WORD.findall(text.casefold())[:MAX_WORDS]
    return shingles(words), len(words)


def _minhash() -> MinHash:
    """This thread's MinHash, emptied: making one checks all its permutations again."""
    minhash: MinHash | None = getattr(_reusable, "minhash", None)
    if minhash is None:
        minhash = _MinHash(
            num_perm=NUM_PERM,
            seed=SEED,
            hashfunc=zlib.crc32,
            permutations=_TEMPLATE.permutations,
            scheme="affine32",
        )
        _reusable.minhash = minhash
    else:
        minhash.clear()
    return minhash


def signature_of(subject: str | None, text: str) -> Signature | None:
    """The signature of a message's own text, or None when it has no words to compare.

    crc32 hashes each shingle: it is the cheapest hash in the standard library, and
    datasketch's default scheme (affine32) mixes every input hash with the MurmurHash3
    finalizer before permuting it, which is what makes a weak hash safe here.
    """
    found, words = text_shingles(comparable_text(subject, text))
    if not found:
        return None
    minhash = _minhash()
    minhash.update_batch(found)
    return Signature.from_bytes(minhash.hashvalues.astype("<u4").tobytes(), words)
