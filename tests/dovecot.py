"""A private Dovecot for the IMAP tests: Debian's ``dovecot-imapd``, never the system's.

One server per test session (or per test, for the ones that restart it) with its own
configuration, run directory, log and maildirs under a temporary directory, listening on
127.0.0.1 and a free port. Each test gets a mailbox user of its own (the passwd-file is
read again whenever it changes), so tests never see each other's mail and the server
need not restart between them.

TLS is offered with a self-signed certificate made for the occasion (STARTTLS on the
plain port, implicit TLS on a second port), so certificate checking is tested against
the real thing. Logins from 127.0.0.1 are allowed without TLS, which the seeding client
uses. XOAUTH2 is checked against a second passdb that holds each user's access token.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from gateway.settings import IMAPMailbox

# What Dovecot 2.3 offers after login, less IDLE and MOVE: a server that makes the poller
# fall back to polling and to COPY, STORE \Deleted and UID EXPUNGE.
BASIC_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT THREAD=REFERENCES MULTIAPPEND "
    "UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH SEARCHRES "
    "LITERAL+ SPECIAL-USE"
)
USERS = 500


def dovecot_available() -> bool:
    return shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed (apt-get install dovecot-imapd)")
    return found


@dataclass(frozen=True)
class MailUser:
    name: str
    password: str
    token: str


class Dovecot:
    """One private Dovecot instance; ``start``/``stop``/``restart`` and helpers to seed mail."""

    def __init__(self, root: Path, capabilities: str | None = None) -> None:
        self.root = root
        self.capabilities = capabilities
        self.port = _free_port()
        self.tls_port = _free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self.users = [
            MailUser(f"hello{n}@housing.test", f"pw-{n}-secret", f"tok-{n}-xyz")
            for n in range(1, USERS + 1)
        ]
        self._next_user = itertools.count()
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o711)
        self.cert = root / "cert.pem"
        self.key = root / "key.pem"
        self.conf = root / "dovecot.conf"
        self.log = root / "dovecot.log"
        self.mail = root / "mail"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if not self.cert.exists():
            self._make_certificate()
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.mail.mkdir(exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        self._write_passwd()
        self.conf.write_text(self._config())
        self.process = subprocess.Popen(
            [_binary("dovecot"), "-F", "-c", str(self.conf)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening")

    def stop(self) -> None:
        """Stop the whole instance: the master alone would leave serving children behind."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the children leave after the master
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -- users and mail --------------------------------------------------------------

    def new_user(self) -> MailUser:
        """A mailbox user no other test has used (the passwd-file lists them all from the
        start: Dovecot notices a changed file only by its mtime, in whole seconds)."""
        return self.users[next(self._next_user)]

    @contextmanager
    def client(self, user: MailUser) -> Iterator[IMAPClient]:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        try:
            client.login(user.name, user.password)
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def append(
        self,
        user: MailUser,
        messages: Iterable[bytes],
        folder: str = "INBOX",
        flags: tuple[bytes, ...] = (),
    ) -> None:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            batch = [{"msg": raw, "flags": flags} for raw in messages]
            for start in range(0, len(batch), 100):  # MULTIAPPEND: one command per hundred
                client.multiappend(folder, batch[start : start + 100])

    def uids(self, user: MailUser, folder: str = "INBOX") -> list[int]:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(int(uid) for uid in client.search("ALL"))

    def bodies(self, user: MailUser, folder: str = "INBOX") -> list[bytes]:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, [b"BODY.PEEK[]"]) if uids else {}
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def uidvalidity(self, user: MailUser, folder: str = "INBOX") -> int:
        with self.client(user) as client:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def rebuild(self, user: MailUser, uidvalidity: int, folder: str = "INBOX") -> None:
        """Empty a folder and give it a new UIDVALIDITY, as a restore from backup does."""
        with self.client(user) as client:
            client.select_folder(folder)
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
        subprocess.run(
            [
                _binary("doveadm"),
                "-c",
                str(self.conf),
                "mailbox",
                "update",
                "-u",
                user.name,
                "--uid-validity",
                str(uidvalidity),
                folder,
            ],
            check=True,
            capture_output=True,
        )

    # -- files -----------------------------------------------------------------------

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                _binary("openssl"),
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
            ],
            check=True,
            capture_output=True,
        )
        self.cert.chmod(0o644)
        self.key.chmod(0o600)

    def _write_passwd(self) -> None:
        nobody = pwd.getpwnam("nobody")
        ids = f"{nobody.pw_uid}:{nobody.pw_gid}"
        home = self.mail
        passwords = "".join(
            f"{u.name}:{{PLAIN}}{u.password}:{ids}::{home}/{u.name}\n" for u in self.users
        )
        tokens = "".join(
            f"{u.name}:{{PLAIN}}{u.token}:{ids}::{home}/{u.name}\n" for u in self.users
        )
        for name, text in (("passwd", passwords), ("tokens", tokens)):
            path = self.root / name
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text)
            temporary.chmod(0o644)
            temporary.replace(path)

    def _config(self) -> str:
        root = self.root
        capability = f"imap_capability = {self.capabilities}\n" if self.capabilities else ""
        return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log}
info_log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
  mechanisms = plain login
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/tokens
  mechanisms = xoauth2
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{capability}
"""


@contextmanager
def running_dovecot(capabilities: str | None = None) -> Iterator[Dovecot]:
    """A started Dovecot in a directory of its own, stopped and removed afterwards.

    Not under pytest's temporary directory: that is private to root, and Dovecot reads the
    maildirs as an unprivileged user.
    """
    if not dovecot_available():
        pytest.fail("dovecot is not installed: apt-get install dovecot-imapd (see .ci/run)")
    root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
    server = Dovecot(root, capabilities)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """The shared Dovecot: IDLE, MOVE and UIDPLUS, as Dovecot offers them."""
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def basic_dovecot() -> Iterator[Dovecot]:
    """A Dovecot that offers neither IDLE nor MOVE."""
    with running_dovecot(BASIC_CAPABILITIES) as server:
        yield server


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    """A Dovecot for one test alone, for tests that stop or restart it."""
    with running_dovecot() as server:
        yield server


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    return dovecot.new_user()


def mailbox_for(server: Dovecot, user: MailUser, **overrides: object) -> IMAPMailbox:
    """The gateway's configuration of ``user``'s mailbox: STARTTLS, verified against the
    test certificate, password login."""
    fields: dict[str, object] = {
        "name": user.name.split("@")[0],
        "host": server.host,
        "port": server.port,
        "tls": "starttls",
        "ca_file": server.cert,
        "username": user.name,
        "password": user.password,
    }
    fields.update(overrides)
    return IMAPMailbox.model_validate(fields)


def mailbox_json(*mailboxes: IMAPMailbox) -> str:
    """``INTAKE_IMAP_MAILBOXES`` for a child process, secrets included."""
    items = []
    for mailbox in mailboxes:
        item = mailbox.model_dump(mode="json", exclude_none=True)
        for secret in ("password", "oauth2_token"):
            value = getattr(mailbox, secret)
            if value is not None:
                item[secret] = value.get_secret_value()
        items.append(item)
    return json.dumps(items)
