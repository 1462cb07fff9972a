"""Email to ``intake/v1``: runs in the worker as the pipeline's first step for email.

Parsing MIME is most of the cost of taking in mail, so the SMTP edge only stores the raw
message and this runs later. It must never raise for bad input: a message it cannot read
still becomes a record, flagged ``needs_review`` with the reasons, its raw bytes kept.

The standard library builds the MIME tree, as it does inside mail-parser, which then reads
the sender where the standard library cannot. Text and attachments are taken from the
tree here, because real mail misnames its character sets: ``iso-8859-1`` that is really
UTF-8 or windows-1252, ``gb2312`` that is really GBK, raw 8-bit headers. Text is decoded
with the superset of the charset it names, as browsers do, and nothing a person reads
keeps control or bidi characters.
"""

from __future__ import annotations

import binascii
import codecs
import html
import re
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

import mailparser
from inscriptis import get_text

from channels.email.automated import automated_reasons
from channels.email.identity import split_headers
from gateway.blobstore import BlobStore
from gateway.errors import TemporaryError
from gateway.language import detect_language
from gateway.ledger import LedgerEntry
from gateway.plaintext import clean_line, clean_text, strip_controls
from gateway.schema import Attachment, Customer, Disposition, IntakeRecord, Thread

MAX_ATTACHMENTS = 50
MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 2_000_000
MAX_HEADER_CHARS = 16_384  # of any one header; the rest is left in the raw
MAX_SUBJECT_CHARS = 998
MAX_REFERENCES = 50
_MSGID = re.compile(r"<[^<>\s]{1,900}>")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?)")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_NOT_IN_ADDRESS = re.compile(r"[\s<>()\[\]\\,;:\"\x00-\x1f\x7f-\x9f]")
_BIDI_AND_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNSAFE_IN_FILENAME = re.compile(r'[<>:"/\\|?*]')
_TAGS = re.compile(r"<[^<>]*>")  # linear: no backtracking on markup that never closes
_SERIOUS_DEFECTS = {
    "StartBoundaryNotFoundDefect",
    "CloseBoundaryNotFoundDefect",
    "MultipartInvariantViolationDefect",
    "NoBoundaryInMultipartDefect",
}
_OWN, _IN_ATTACHMENT, _IN_MESSAGE = 0, 1, 2
_ALIASES = {"x-gbk": "gb18030", "x-sjis": "cp932", "x-euc-jp": "euc_jp"}
# What text under these labels really is, in practice (the WHATWG Encoding Standard).
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859_1": "cp1252",
    "iso8859_9": "cp1254",
    "tis_620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
    "iso2022_jp": "iso2022_jp_2",
}


def normalise_email(
    raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
) -> IntakeRecord:
    """Fill ``record`` from the raw message; flag it for review where that is not possible."""
    given = entry.meta.get("envelope_from")
    envelope_from = None if given is None else _clean_line(str(given)).strip("<>")
    source = record.source.model_copy(
        update={
            "message_id": _message_id(entry.meta.get("message_id")),
            "envelope_from": envelope_from,
            "recipients": [_clean_line(str(r)) for r in entry.meta.get("recipients") or []],
        }
    )
    try:
        fields = _read(raw, envelope_from, blobs)
    except TemporaryError:
        raise  # the blob store is down: the job must be retried, not the message flagged
    except Exception as exc:  # the last guard: a fault here must not lose a complaint
        fields = {"review_reasons": [f"the message could not be read ({type(exc).__name__})"]}
    fields["source"] = source.model_copy(update=fields.pop("source", {}))
    if fields["review_reasons"]:
        fields["disposition"] = Disposition.NEEDS_REVIEW
    return record.model_copy(update=fields)


def _read(raw: bytes, envelope_from: str | None, blobs: BlobStore) -> dict[str, Any]:
    head, _ = split_headers(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    review: list[str] = []
    if not headers.keys():
        review.append("the message has no headers; it may not be an email at all")
    message = _parse(raw, review)
    charset = _charset_of(headers)
    name, address = _sender(message, headers, charset)
    if not address:
        review.append("no sender address could be read (From is missing or unreadable)")
    body = _Body(blobs, review)
    if message is not None:
        body.walk(message)
    text = body.text()
    if message is not None and headers.keys() and not text and not body.attachments:
        if body.defects:
            review.append("the MIME structure is broken: " + ", ".join(sorted(body.defects)))
        else:
            review.append("the message has no readable text and no attachments")
    subject = _clean_line(_header(headers, "Subject", charset))[:MAX_SUBJECT_CHARS] or None
    reasons = automated_reasons(headers, envelope_from, address, subject)
    return {
        "customer": Customer(name=name or None, email=address, preferred_contact="email"),
        "subject": subject,
        "thread": _thread(headers),
        "text": text,
        "language": detect_language(text),
        "attachments": body.attachments,
        "source": {"automated": bool(reasons), "automated_reasons": reasons},
        "review_reasons": list(dict.fromkeys(review)),
    }


def _parse(raw: bytes, review: list[str]) -> Message | None:
    """The MIME tree, every header in it cut to MAX_HEADER_CHARS. Decoding RFC 2047 words
    takes time quadratic in a header's length, in the standard library and in mail-parser,
    which decodes every header: uncut, one hostile header would hold a worker for minutes."""
    try:
        message = message_from_bytes(raw, policy=compat32)
    except RecursionError:  # the parser recurses once per level of multipart nesting
        review.append("the message is nested too deeply to be parsed as MIME")
        return None
    stack = [message]
    while stack:
        part = stack.pop()
        if any(len(str(value)) > MAX_HEADER_CHARS for _, value in part.raw_items()):
            kept = list(part.raw_items())
            for name in {name for name, _ in kept}:
                del part[name]
            for name, value in kept:
                part.set_raw(name, str(value)[:MAX_HEADER_CHARS])
        if part.is_multipart():
            stack.extend(c for c in part.get_payload() if isinstance(c, Message))
    return message


class _Body:
    """One pass over the MIME tree: the body text and the attachments, in order."""

    def __init__(self, blobs: BlobStore, review: list[str]) -> None:
        self.blobs = blobs
        self.review = review
        self.texts: dict[tuple[bool, str], list[str]] = {}
        self.attachments: list[Attachment] = []
        self.defects: set[str] = set()
        self.left_out = 0

    def walk(self, message: Message) -> None:
        """Depth first without recursion. ``inside`` is where a part sits: in the message
        itself, in an attached container, or in an attached message (kept whole)."""
        stack: list[tuple[Message, int]] = [(message, _OWN)]
        while stack:
            part, inside = stack.pop()
            if inside == _OWN:
                found = {type(defect).__name__ for defect in part.defects}
                self.defects |= found & _SERIOUS_DEFECTS
            ctype = part.get_content_type()
            disposition = str(part.get_content_disposition() or "")
            filename = _safe_filename(_filename(part))
            if part.is_multipart():
                children = [c for c in part.get_payload() if isinstance(c, Message)]
                children += self._hidden_in_epilogue(part)
                within = inside
                if ctype == "message/rfc822":
                    self._attach_message(children, filename, inside)
                    within = _IN_MESSAGE
                elif disposition == "attachment" or (filename and disposition != "inline"):
                    within = max(inside, _IN_ATTACHMENT)
                stack.extend((child, within) for child in reversed(children))
            elif part.get_content_maintype() == "multipart":
                continue  # its boundary was never found: the defects say so
            elif (
                part.get_content_maintype() == "text"
                and disposition != "attachment"
                and (not filename or disposition == "inline")
            ):
                self._add_text(part, inside != _OWN)
            elif inside != _IN_MESSAGE:
                self._attach(_payload(part), ctype, filename)

    def _hidden_in_epilogue(self, part: Message) -> list[Message]:
        """Parts after a multipart's end, where a nested part that reuses the outer boundary
        leaves them (a trick that hides files from some parsers): as mail-parser does."""
        boundary, epilogue = part.get_boundary(), part.epilogue
        if not boundary or not epilogue or f"--{boundary}" not in epilogue:
            return []
        delimiter = re.compile(rf"^--{re.escape(boundary)}(--)?[ \t]*\r?$", re.MULTILINE)
        found: list[Message] = []
        matches = list(delimiter.finditer(epilogue))
        ends = [m.start() for m in matches[1:]] + [len(epilogue)]
        for opening, end in zip(matches, ends, strict=True):
            if opening.group(1):
                continue  # what follows a close delimiter is not a part
            segment = epilogue[opening.end() : end].lstrip("\r\n")
            try:
                found.append(message_from_bytes(segment.encode("utf-8", "surrogateescape")))
            except RecursionError:
                self.review.append("a part hidden after the message's end is nested too deep")
        return found

    def text(self) -> str:
        """The plain text if any, else the HTML as text, else other text: the message's own
        parts before those of a message attached to it."""
        for inside in (False, True):
            for kind in ("plain", "html", "other"):
                parts = [t for t in self.texts.get((inside, kind), []) if t.strip()]
                if parts:
                    text = "\n\n".join(parts)
                    return _clean_text(_html_to_text(text) if kind == "html" else text)
        return ""

    def _add_text(self, part: Message, inside: bool) -> None:
        text = _decode(_payload(part), _param_text(part.get_param("charset")))
        if _is_binary(text):
            self.review.append("a text part holds binary data; it is kept only in the raw")
            return
        if text.count("\ufffd") > max(8, len(text) // 10):
            self.review.append("some text could not be decoded from its character set")
        subtype = part.get_content_subtype()
        kind = subtype if subtype in ("plain", "html") else "other"
        self.texts.setdefault((inside, kind), []).append(strip_controls(_lines(text)))

    def _attach_message(self, children: list[Message], filename: str | None, inside: int) -> None:
        if inside == _IN_MESSAGE:
            return  # a message within an attached message stays inside it
        try:
            data = children[0].as_bytes(policy=compat32) if children else b""
        except (LookupError, ValueError, TypeError, AttributeError):
            self.review.append("an attached message could not be extracted; see the raw")
            return
        self._attach(data, "message/rfc822", filename)

    def _attach(self, data: bytes, content_type: str, filename: str | None) -> None:
        if len(self.attachments) >= MAX_ATTACHMENTS:
            if not self.left_out:
                self.review.append(
                    f"more than {MAX_ATTACHMENTS} attachments; the rest kept only in the raw"
                )
            self.left_out += 1
            return
        self.attachments.append(
            Attachment(
                filename=filename,
                content_type=_clean_line(content_type)[:100] or "application/octet-stream",
                size=len(data),
                sha256=self.blobs.put(data),
            )
        )


def _payload(part: Message) -> bytes:
    """The part's content with its transfer encoding undone, leniently as mail clients do."""
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError):
        data = None
    return data if isinstance(data, bytes) else b""


def _codec(charset: str | None) -> str | None:
    """The Python codec for a charset label, widened to its superset; None if unknown."""
    label = (charset or "").strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    if not label:
        return None
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib: not character sets
        return None
    name = info.name.replace("-", "_")
    return _SUPERSETS.get(name, name)


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes as text, never raising. Non-ASCII bytes that are valid UTF-8 are UTF-8, whatever
    the label says (other charsets' text almost never is); else the labelled charset, else
    windows-1252. Pure ASCII goes to the label, for 7-bit charsets such as ISO-2022-JP."""
    if not data.isascii():
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode(_codec(charset) or "cp1252", errors="replace")
    except (LookupError, UnicodeError):
        return data.decode("cp1252", errors="replace")


def _charset_of(headers: Message) -> str | None:
    """The message's own charset: the best guess for raw 8-bit bytes in its headers."""
    return _param_text(headers.get_param("charset"))


def _filename(part: Message) -> str | None:
    """The part's filename. The parser turns raw 8-bit parameters into replacement
    characters, so they are read from the raw headers, decoded first."""
    view = Message()
    for key, value in part.raw_items():
        if key.lower() in ("content-type", "content-disposition"):
            view[key] = _decode(str(value).encode("utf-8", "surrogateescape"), None)
    return _param_text(view.get_filename())


def _param_text(value: object) -> str | None:
    """A MIME parameter as text: RFC 2231 and RFC 2047 forms and raw 8-bit decoded."""
    if not value:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
        data = str(value[2]).encode("latin-1", "replace")
        return _decode(data, str(value[0] or "") or None)
    text = str(value)
    if not text.isascii():  # raw 8-bit, carried by the parser as surrogate escapes
        text = _decode(text.encode("utf-8", "surrogateescape"), None)
    return _decode_words(text)


def _header(headers: Message, name: str, charset: str | None, decode: bool = True) -> str:
    """The first ``name`` header as text: raw 8-bit read as UTF-8 (RFC 6532), else as
    ``charset``; then RFC 2047 encoded words decoded, leniently."""
    for key, value in headers.raw_items():
        if key.lower() == name.lower():
            raw = str(value)[:MAX_HEADER_CHARS].encode("utf-8", "surrogateescape")
            text = _decode(raw, charset)
            return _decode_words(text) if decode else text
    return ""


def _decode_words(value: str) -> str:
    def word(match: re.Match[str]) -> str:
        charset, encoding, encoded = match.groups()
        data = encoded.encode("ascii", "replace")
        try:
            if encoding in "Bb":
                decoded = binascii.a2b_base64(data + b"=" * (-len(data) % 4))
            else:
                decoded = binascii.a2b_qp(data, header=True)
        except (binascii.Error, ValueError):
            return match.group(0)
        return _decode(decoded, charset.split("*")[0])

    return _ENCODED_WORD.sub(word, _BETWEEN_WORDS.sub("", value))


def _sender(
    message: Message | None, headers: Message, charset: str | None
) -> tuple[str, str | None]:
    """``(display name, address)`` from From, read by the standard library from the decoded
    header, else by mail-parser. An address in a From that does not parse (``Big Bug
    bb@bug.com``, two addresses without a comma) is taken as the sender's."""
    raw_from = _header(headers, "From", charset, decode=False)
    try:
        candidates = getaddresses([raw_from]) if raw_from else []
    except RecursionError:  # it recurses once per nested comment: "((((..."
        candidates = []
    if message is not None and not any(_valid_address(a) for _, a in candidates):
        candidates = _read_by_mail_parser(message)
    for name, address in candidates:
        valid = _valid_address(address)
        if valid:
            return _clean_line(_decode_words(name)).strip("\"' ")[:200], valid
    from_text = _decode_words(raw_from)[:2000]
    for token in _NOT_IN_ADDRESS.split(from_text):
        valid = _valid_address(token) if _ADDRESS.fullmatch(token) else None
        if valid:
            rest = from_text.replace(token, " ", 1)
            name = "" if "@" in rest else _clean_line(rest).strip("\"'<> ")
            return name[:200], valid
    return "", None


def _read_by_mail_parser(message: Message) -> list[tuple[str, str]]:
    """mail-parser's reading of From, asked only when the standard library's finds no
    address: it reads the whole message (every header decoded, every part walked), which
    cost half of normalising one."""
    try:
        mail = mailparser.MailParser(message)
        return [(str(pair[0]), str(pair[1])) for pair in (mail.from_ or [])]
    except Exception:  # mail-parser raises many kinds on hostile input; it only adds a
        return []  # reading of the sender, and the tree is already there


def _valid_address(address: str | None) -> str | None:
    """``local@domain`` with a dotted domain and nothing that could smuggle another."""
    address = (address or "").strip()
    local, at, domain = address.rpartition("@")
    domain = domain.rstrip(".")
    labels = domain.split(".")
    if not at or not local or "@" in local or len(address) > 254 or len(local) > 64:
        return None
    if _NOT_IN_ADDRESS.search(address) or _BIDI_AND_CONTROLS.search(address):
        return None
    if len(labels) < 2 or not all(labels):
        return None
    return f"{local}@{domain.lower()}"


def _message_id(value: object) -> str | None:
    text = _clean_line(str(value or ""))
    found = _MSGID.search(text)
    return found.group(0) if found else (text[:998] or None)


def _thread(headers: Message) -> Thread:
    def ids(name: str) -> list[str]:
        return _MSGID.findall(_clean_line(_header(headers, name, None)))

    in_reply_to = ids("In-Reply-To")
    references = ids("References")
    if len(references) > MAX_REFERENCES:  # the thread's root and its latest messages
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    return Thread(in_reply_to=in_reply_to[0] if in_reply_to else None, references=references)


def _is_binary(text: str) -> bool:
    """Control characters that no text encoding produces: a file, not a message."""
    sample = text[:20_000]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f\x1b")
    return controls > max(4, len(sample) // 100)


def _html_to_text(markup: str) -> str:
    markup = markup[:MAX_HTML_CHARS]
    text = str(get_text(markup))
    if not text.strip():  # lxml gives up on some hostile markup, e.g. very deep nesting
        text = html.unescape(_TAGS.sub(" ", markup))
    return text


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")


def _clean_text(text: str) -> str:
    return clean_text(_lines(text).replace("\xa0", " "))[:MAX_TEXT_CHARS]


_clean_line = clean_line


def _safe_filename(name: str | None) -> str | None:
    """The last path element only, without control or bidi characters, reserved
    characters or leading dots: shown to people, never opened."""
    if not name:
        return None
    text = _clean_line(name.replace("\\", "/").rsplit("/", 1)[-1])
    text = _UNSAFE_IN_FILENAME.sub("_", text).lstrip(". ")
    return text[:255] or None
