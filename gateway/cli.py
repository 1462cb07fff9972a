"""The ``intake`` command: run the gateway whole or in parts, print the schema, read the feed."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import socket
import sys
from typing import Annotated

import typer

from gateway import __version__
from gateway.errors import IntakeError, SettingsError
from gateway.logs import configure_logging, get_logger
from gateway.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
log = get_logger("gateway.cli")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"intake: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json, settings.log_file)
    return settings


def _redis_url(settings: Settings) -> str:
    """INTAKE_REDIS_URL, or the embedded Redis that `intake run` started on this machine."""
    if settings.redis_url:
        return settings.redis_url
    socket_path = (settings.data_dir / "redis" / "redis.sock").resolve()
    if socket_path.exists():
        return f"unix://{socket_path}"
    typer.echo(
        "intake: INTAKE_REDIS_URL is not set and no embedded Redis is running under "
        f"{settings.data_dir} (start `intake run`, or set INTAKE_REDIS_URL)",
        err=True,
    )
    raise typer.Exit(2)


@app.command()
def run() -> None:
    """Run everything on this machine: SMTP, HTTP, IMAP, workers (and Redis when none is set)."""
    from gateway.supervisor import run_all
    from workers.runner import check_rules

    settings = _settings()
    try:
        check_rules(settings)
        raise typer.Exit(run_all(settings))
    except SettingsError as exc:
        typer.echo(f"intake: {exc}", err=True)
        raise typer.Exit(2) from None
    except IntakeError as exc:
        typer.echo(f"intake: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def smtp() -> None:
    """Run the SMTP listener alone."""
    from channels.email.smtp import serve
    from gateway.connection import connect
    from gateway.intake import IntakeContext

    settings = _settings()
    ctx = IntakeContext.from_settings(settings, connect(_redis_url(settings)))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(ctx, stop)

    asyncio.run(main())


@app.command()
def http() -> None:
    """Run the HTTP app alone."""
    import uvicorn

    from gateway.connection import connect
    from gateway.http import create_app

    settings = _settings()
    application = create_app(settings, connect(_redis_url(settings)))
    config = uvicorn.Config(
        application,
        host=settings.bind_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    # Everything loaded at start-up lives as long as the process: keeping it out of the
    # collector's scans shortens the pauses that otherwise set the tail of request latency.
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()


@app.command()
def imap(
    once: Annotated[bool, typer.Option(help="One round per mailbox, then stop.")] = False,
) -> None:
    """Read the mailboxes of INTAKE_IMAP_MAILBOXES over IMAP."""
    from channels.imap.service import IMAPService
    from gateway.connection import connect

    settings = _settings()
    if not settings.imap_mailboxes:
        typer.echo("intake: INTAKE_IMAP_MAILBOXES names no mailbox", err=True)
        raise typer.Exit(2)
    service = IMAPService(settings, connect(_redis_url(settings)))
    if once:
        raise typer.Exit(0 if service.run_once() else 1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: service.stop_event.set())
    service.run()


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
) -> None:
    """Run one pipeline worker."""
    from workers.runner import run_worker

    settings = _settings()
    try:
        run_worker(settings, _redis_url(settings), burst=burst)
    except SettingsError as exc:
        typer.echo(f"intake: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of the normalised record (intake/v1)."""
    from gateway.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@app.command()
def feed(
    group: Annotated[str, typer.Option(help="Consumer group.")] = "back-office",
    consumer: Annotated[str, typer.Option(help="This consumer's name.")] = socket.gethostname(),
    once: Annotated[bool, typer.Option(help="Read what is waiting, then stop.")] = False,
) -> None:
    """Print records from the feed as JSON lines, acknowledging each one printed."""
    from gateway.connection import connect
    from gateway.feed import FeedConsumer

    settings = _settings()
    reader = FeedConsumer(connect(_redis_url(settings)), group, consumer)
    reader.ensure_group()
    while True:
        entries = reader.read(block_ms=None if once else 5000)
        for entry in entries:
            sys.stdout.write(entry.record.to_json() + "\n")
            sys.stdout.flush()
            reader.ack(entry.entry_id)
        if once and not entries:
            return


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
