"""Posts forwarded by the social media team to ``social@``: the public post becomes the record.

The team forwards what residents post about the landlord (a tweet, a Facebook comment) by
email, often with a note of their own and a screenshot. The record is about the public
author, with the post's platform, link and time; the team member who forwarded it is kept
apart, because the acknowledgement — with the reference to quote publicly — goes to them,
never to the public author.

The team may fill in labelled lines (``Platform:``, ``Author:``, ``Posted:``, ``Link:``,
``Post:``); without them the post is read from what was pasted: the link names the
platform, ``@handle`` the author, and a date line the time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dateutil import parser as dateparser

from channels.email.normalise import normalise_email
from channels.email.outbound import EmailNotifier
from gateway.blobstore import BlobStore
from gateway.ledger import LedgerEntry
from gateway.schema import Channel, Customer, IntakeRecord, SocialPost

PLATFORMS = {
    "twitter.com": "x",
    "x.com": "x",
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "instagram.com": "instagram",
    "tiktok.com": "tiktok",
    "threads.net": "threads",
    "linkedin.com": "linkedin",
    "nextdoor.co.uk": "nextdoor",
    "nextdoor.com": "nextdoor",
    "reddit.com": "reddit",
    "youtube.com": "youtube",
    "bsky.app": "bluesky",
}
_FORWARD_MARKERS = re.compile(
    r"^(-{3,}\s*forwarded message\s*-{3,}|begin forwarded message:|-{3,}\s*original message"
    r"\s*-{3,})\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_LABEL = re.compile(
    r"^\s*(platform|author|posted by|name|handle|posted|date|time|link|url|post|text|comment)"
    r"\s*:\s*(.*)$",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://[^\s<>\"')]+")
_HANDLE = re.compile(r"(?<![\w.@])@([A-Za-z0-9_.]{2,30})\b")
_FORWARD_HEADER = re.compile(r"^\s*(from|sent|date|to|subject|cc)\s*:", re.IGNORECASE)


def platform_of(url: str) -> str | None:
    host = re.sub(r"^https?://", "", url).split("/")[0].lower().removeprefix("www.")
    host = host.removeprefix("m.").removeprefix("mobile.")
    return PLATFORMS.get(host)


def _posted_at(value: str, fallback_year: int) -> datetime | None:
    cleaned = value.replace("·", " ").strip()
    try:
        when = dateparser.parse(
            cleaned, fuzzy=True, dayfirst=True, default=datetime(fallback_year, 1, 1)
        )
    except (ValueError, OverflowError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read_post(body: str, received: datetime) -> dict[str, str | datetime | None]:
    """The forwarded post's platform, link, author, handle, time and text."""
    marker = _FORWARD_MARKERS.search(body)
    note, forwarded = (body[: marker.start()], body[marker.end() :]) if marker else ("", body)
    found: dict[str, str | datetime | None] = {"note": note.strip() or None}
    text_lines: list[str] = []
    in_post = False
    for line in forwarded.splitlines():
        label = _LABEL.match(line)
        if label:
            key, value = label.group(1).lower(), label.group(2).strip()
            in_post = key in ("post", "text", "comment")
            if in_post:
                if value:
                    text_lines.append(value)
            elif key == "platform":
                found["platform"] = value.lower()
            elif key in ("author", "posted by", "name"):
                found["author"] = value
            elif key == "handle":
                found["handle"] = value.lstrip("@")
            elif key in ("posted", "date", "time"):
                found["posted_at"] = _posted_at(value, received.year)
            elif key in ("link", "url"):
                found["post_url"] = value
            continue
        if in_post or not _FORWARD_HEADER.match(line):
            text_lines.append(line)
    urls = [u for u in _URL.findall(forwarded) if platform_of(u)]
    if not found.get("post_url") and urls:
        found["post_url"] = urls[0]
    url = str(found.get("post_url") or "")
    if not found.get("platform"):
        found["platform"] = platform_of(url) if url else None
    author = str(found.get("author") or "")
    if not found.get("handle"):
        handle = _HANDLE.search(author) or _HANDLE.search(forwarded)
        found["handle"] = handle.group(1) if handle else None
    if author:
        found["author"] = _HANDLE.sub("", author).strip(" ()") or None
    text = "\n".join(line for line in text_lines if not _URL.fullmatch(line.strip()))
    found["text"] = text.strip()
    return found


def normalise_social_forward(
    raw: bytes, entry: LedgerEntry, record: IntakeRecord, blobs: BlobStore
) -> IntakeRecord:
    """The forwarded email, read as email, then turned into the public post it carries."""
    mail = normalise_email(raw, entry, record, blobs)
    post = read_post(mail.text, mail.received_at)
    handle = post.get("handle")
    forwarder = {"email": mail.customer.email, "name": mail.customer.name}
    extra = {**mail.source.extra, "forwarded_by": forwarder, "team_note": post.get("note")}
    update: dict[str, object] = {
        "channel": Channel.SOCIAL,
        "customer": Customer(
            name=str(post["author"]) if post.get("author") else None,
            handle=f"@{handle}" if handle else None,
            preferred_contact="social",
        ),
        "text": post["text"] or mail.text,
        "source": mail.source.model_copy(update={"extra": extra}),
    }
    review = list(mail.review_reasons)
    url, platform = post.get("post_url"), post.get("platform")
    if url and platform:
        posted = post.get("posted_at")
        update["social"] = SocialPost(
            platform=str(platform),
            post_url=str(url),
            posted_at=posted if isinstance(posted, datetime) else None,
        )
    else:
        review.append("the forwarded post's link or platform could not be found")
    if not handle and not post.get("author"):
        review.append("the post's author could not be found")
    update["review_reasons"] = review
    return mail.model_copy(update=update)


class SocialTeamNotifier(EmailNotifier):
    """Acknowledges a forwarded post to the team member who forwarded it, by email.

    ``internal``: the recipient is one of our own addresses on purpose; ``templates``: the
    wording written for the team, with a public reply they can post.
    """

    internal = True
    templates = "acknowledgement_social"

    def recipient_for(self, record: IntakeRecord) -> str | None:
        forwarded = record.source.extra.get("forwarded_by")
        if isinstance(forwarded, dict) and forwarded.get("email"):
            return str(forwarded["email"])
        return None
