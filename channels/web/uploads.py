"""Files sent with the form: checked by what they contain, stored, and remembered.

A file's type is read from its first bytes (and, for Word and OpenDocument files, from
the zip inside), never from its name or the type the browser declares: a program renamed
``letter.pdf`` is refused, a photo named ``photo.pdf`` is kept as the image it is. Plain
text is taken only from a ``.txt`` file, since HTML and scripts are text too. Accepted
files go to the blob store at once and the person is given a signed token for each, so
that correcting another field does not mean choosing the files again.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from channels.web.tokens import Signer
from gateway.blobstore import BlobStore
from gateway.plaintext import clean_line

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
ALLOWED_DESCRIPTION = (
    "a PDF, JPG, PNG, GIF, WebP, HEIC, Word (DOCX), OpenDocument (ODT) or text (TXT) file"
)
ACCEPT_ATTRIBUTE = ".pdf,.jpg,.jpeg,.png,.gif,.webp,.heic,.heif,.docx,.odt,.txt"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_UNSAFE_IN_NAME = str.maketrans({c: "_" for c in '<>:"/\\|?*'})


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str

    def token(self, signer: Signer) -> str:
        data = json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=True).encode()
        encoded = base64.urlsafe_b64encode(data).decode()
        return f"{encoded}.{signer.sign('file', encoded)}"

    @classmethod
    def from_token(cls, signer: Signer, token: str) -> StoredFile | None:
        encoded, _, signature = token.partition(".")
        if not encoded or not signer.verify(signature, "file", encoded):
            return None
        try:
            return cls(**json.loads(base64.urlsafe_b64decode(encoded)))
        except (ValueError, TypeError, binascii.Error):
            return None

    @property
    def size_text(self) -> str:
        if self.size >= 1024 * 1024:
            return f"{self.size / (1024 * 1024):.1f}MB"
        return f"{max(1, round(self.size / 1024))}KB"


def sniff(data: bytes, filename: str) -> str | None:
    """The content type of ``data`` if it is one the form takes, else None."""
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    if head.startswith(b"PK\x03\x04"):
        return _office_type(data)
    if PurePosixPath(filename.lower()).suffix == ".txt" and _is_text(data):
        return "text/plain"
    return None


def _office_type(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names and "[Content_Types].xml" in names:
                return DOCX
            if "mimetype" in names:
                with archive.open("mimetype") as entry:
                    if entry.read(64).strip() == ODT.encode():
                        return ODT
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        return None
    return None


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    controls = sum(1 for ch in text[:20_000] if ch < " " and ch not in "\t\n\r\f")
    return controls == 0


def safe_filename(name: str | None) -> str:
    """The last part of the name a browser sent, fit to show; never used as a path."""
    text = clean_line((name or "").replace("\\", "/").rsplit("/", 1)[-1])
    text = text.translate(_UNSAFE_IN_NAME).lstrip(". ")
    return text[:200] or "file"


class UploadChecker:
    """Checks and stores the files of one submission, collecting a message per refusal."""

    def __init__(self, blobs: BlobStore, max_files: int, max_bytes: int) -> None:
        self.blobs = blobs
        self.max_files = max_files
        self.max_bytes = max_bytes

    @property
    def max_text(self) -> str:
        megabytes = self.max_bytes / (1024 * 1024)
        return f"{megabytes:g}MB" if megabytes >= 1 else f"{self.max_bytes // 1024}KB"

    async def add(
        self, uploads: list[UploadFile], kept: list[StoredFile]
    ) -> tuple[list[StoredFile], list[str]]:
        """Store the acceptable ``uploads`` after ``kept``; the files, and the refusals."""
        files = list(kept)
        problems: list[str] = []
        for upload in uploads:
            name = safe_filename(upload.filename)
            data = await upload.read(self.max_bytes + 1)
            if len(files) >= self.max_files:
                problems.append(
                    f"You can send up to {self.max_files} files. ‘{name}’ was not added"
                )
            elif not data:
                problems.append(f"‘{name}’ is empty")
            elif len(data) > self.max_bytes:
                problems.append(f"‘{name}’ must be smaller than {self.max_text}")
            else:
                content_type = sniff(data, name)
                if content_type is None:
                    problems.append(f"‘{name}’ must be {ALLOWED_DESCRIPTION}")
                    continue
                digest = await run_in_threadpool(self.blobs.put, data)  # the sync: off the loop
                files.append(StoredFile(name, content_type, len(data), digest))
        return files, problems
