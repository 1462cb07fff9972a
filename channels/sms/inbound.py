"""Taking in one message from Twilio's webhook: store it, queue it, honour its keyword.

The form is stored exactly as Twilio sent it and the worker reads it later; here only
what must happen before Twilio is answered is done. The idempotency key is the
MessageSid, so Twilio's retries and fail-overs, even arriving at the same moment, give
one record. An opt-out keyword takes effect now, not when the worker gets to it, so that
nothing queued before it is sent after it; it is applied on a repeat delivery too, in
case the first delivery was stored but not answered.
"""

from __future__ import annotations

import redis
from starlette.concurrency import run_in_threadpool

from channels.sms.keywords import Keyword, keyword_of
from channels.sms.numbers import channel_of, e164
from channels.sms.payload import Form
from channels.sms.suppression import SuppressionList
from gateway.batching import AcceptBatcher
from gateway.errors import QueueError, RejectedError
from gateway.intake import Arrival, IntakeContext, Receipt

NORMALISER = "twilio"
MAX_SID_CHARS = 64


async def take_in(raw: bytes, form: Form, ctx: IntakeContext, batcher: AcceptBatcher) -> Receipt:
    """Accept the message; raises TemporaryError when it could not be stored or queued."""
    arrival = arrival_of(raw, form)
    receipt = await batcher.accept(arrival)
    keyword = keyword_of(form.first("Body"), form.first("OptOutType"))
    if keyword is not None:
        await run_in_threadpool(honour_keyword, keyword, form, arrival.channel, ctx.connection)
    return receipt


def arrival_of(raw: bytes, form: Form) -> Arrival:
    """The arrival of a Messaging webhook's form; RejectedError if it is not one."""
    message_sid = (form.first("MessageSid") or form.first("SmsMessageSid") or "").strip()
    if not message_sid or len(message_sid) > MAX_SID_CHARS or not message_sid.isalnum():
        raise RejectedError(
            "the request carries no MessageSid: it is not a Messaging webhook",
            smtp_reply="554 5.6.0 Not a message",
            http_status=400,
        )
    return Arrival(
        channel=channel_of(form.first("From") or ""),
        transport="twilio",
        normaliser=NORMALISER,
        raw=raw,
        idempotency_key=f"twilio:{message_sid}",
        meta={"message_sid": message_sid},
    )


def honour_keyword(keyword: Keyword, form: Form, channel: str, connection: redis.Redis) -> None:
    """Put the sender on the suppression list, or take it off, as ``keyword`` asks."""
    number = e164(form.first("From") or "")
    if number is None:
        return
    suppressions = SuppressionList(connection)
    try:
        if keyword is Keyword.OPT_OUT:
            by = "WhatsApp" if channel == "whatsapp" else "SMS"
            suppressions.add(number, f"it sent an opt-out keyword by {by}")
        else:
            suppressions.remove(number)
    except redis.RedisError as exc:
        raise QueueError(f"could not update the suppression list: {type(exc).__name__}") from exc
