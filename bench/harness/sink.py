"""A bare aiosmtpd server that answers 250 to everything and keeps nothing.

It is the baseline for the gateway's SMTP listener (same library, same event-loop set-up,
none of the gateway's work) and the stand-in relay that takes the worker's
acknowledgements. Run as ``python -m harness.sink --port N`` with ``bench/`` on the
module path; SIGTERM or SIGINT stops it, and it then prints how many messages it took.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiosmtpd.smtp import SMTP, Envelope, Session


class SinkHandler:
    """Takes every recipient (aiosmtpd's default) and every message."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        return "250 2.0.0 OK"


async def serve(host: str, port: int) -> int:
    handler = SinkHandler()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.localhost", ident="bench-sink"), host=host, port=port
    )
    await stop.wait()
    server.close()
    return handler.messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    messages = asyncio.run(serve(args.host, args.port))
    print(f"messages={messages}", flush=True)


if __name__ == "__main__":
    main()
