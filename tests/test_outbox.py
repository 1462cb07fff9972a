"""The outbox's claim: once-only, and within a recipient's daily allowance, in one step."""

from __future__ import annotations

import redis

from workers.outbox import Allowance, Outbox

DAY = 86400


def test_a_recipient_gets_no_more_than_the_allowance_and_reruns_count_nothing(
    connection: redis.Redis,
) -> None:
    outbox = Outbox(connection)
    allowance = Allowance("Sam.Taylor@example.net ", sends=2, seconds=DAY)
    states = [outbox.claim(f"r{n}", "acknowledgement", allowance).state for n in range(4)]
    assert states == ["claimed", "claimed", "over", "over"]
    # A job run again is counted once: the first two still may send, the others still not.
    again = [outbox.claim(f"r{n}", "acknowledgement", allowance).state for n in range(4)]
    assert again == ["busy", "busy", "over", "over"]
    other = Allowance("ann.lee@example.net", sends=2, seconds=DAY)
    assert outbox.claim("r9", "acknowledgement", other).state == "claimed"


def test_a_message_sent_stays_sent_whatever_the_allowance(connection: redis.Redis) -> None:
    outbox = Outbox(connection)
    allowance = Allowance("sam.taylor@example.net", sends=1, seconds=DAY)
    assert outbox.claim("r1", "acknowledgement", allowance).state == "claimed"
    outbox.sent("r1", "acknowledgement", 1_700_000_000.0, "relay")
    assert outbox.claim("r2", "acknowledgement", allowance).state == "over"
    claim = outbox.claim("r1", "acknowledgement", allowance)
    assert (claim.state, claim.via) == ("sent", "relay")


def test_the_allowance_keeps_no_address(connection: redis.Redis) -> None:
    Outbox(connection).claim("r1", "acknowledgement", Allowance("private@example.net", 3, DAY))
    for key in connection.scan_iter("*"):
        assert b"private" not in key and b"example" not in key
        assert 0 < connection.ttl(key) <= DAY or connection.type(key) == b"hash"
