"""Files sent with the form: judged by their content, limited in size and number, kept safe."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient

from gateway.http import create_app
from gateway.settings import Settings
from tests.conftest import feed_records
from tests.test_web_form import ANSWERS, PDF, PNG, Visit, queued, summary

MB = 1024 * 1024
ALLOWED = "a PDF, JPG, PNG, GIF, WebP, HEIC, Word (DOCX), OpenDocument (ODT) or text (TXT) file"


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX = zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT = zipped({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"})
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
WINDOWS_PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


@pytest.fixture
def client(settings: Settings, connection: redis.Redis) -> TestClient:
    return TestClient(create_app(settings, connection))


def test_allowed_types_are_kept_with_the_type_their_content_shows(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    files = [
        ("photo.pdf", PNG, "application/pdf"),  # a photo with the wrong name is still a photo
        ("scan.jpg", JPEG, "image/jpeg"),
        ("statement.docx", DOCX, "application/octet-stream"),
        ("notes.odt", ODT, "application/vnd.oasis.opendocument.text"),
        ("IMG_0001.HEIC", HEIC, "image/heic"),
    ]
    response = Visit(client).send(ANSWERS, files)
    assert response.status_code == 200, summary(response.text)
    drain()
    [record] = feed_records(connection)
    assert [(a.filename, a.content_type) for a in record.attachments] == [
        ("photo.pdf", "image/png"),
        ("scan.jpg", "image/jpeg"),
        (
            "statement.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("notes.odt", "application/vnd.oasis.opendocument.text"),
        ("IMG_0001.HEIC", "image/heic"),
    ]


@pytest.mark.parametrize(
    ("name", "data", "declared"),
    [
        ("letter.pdf", WINDOWS_PROGRAM, "application/pdf"),
        ("photo.png", b"<html><script>alert(1)</script></html>", "image/png"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml"),
        ("archive.docx", zipped({"evil.exe": WINDOWS_PROGRAM}), "application/msword"),
        ("notes.txt", b"\x00\x01\x02binary\x00\x00", "text/plain"),
        ("notes.html", b"<p>just text</p>", "text/plain"),
    ],
)
def test_a_file_of_a_type_not_allowed_is_refused_by_its_content(
    client: TestClient, connection: redis.Redis, name: str, data: bytes, declared: str
) -> None:
    response = Visit(client).send(ANSWERS, [(name, data, declared)])
    assert response.status_code == 422
    assert summary(response.text) == [("attachments", f"‘{name}’ must be {ALLOWED}")]
    assert queued(connection) == 0


def test_a_file_over_10mb_and_an_empty_file_are_refused(
    client: TestClient, connection: redis.Redis
) -> None:
    big = PDF + b"0" * (10 * MB + 1 - len(PDF))
    response = Visit(client).send(
        ANSWERS, [("survey.pdf", big, "application/pdf"), ("blank.pdf", b"", "application/pdf")]
    )
    assert response.status_code == 422
    assert summary(response.text) == [
        ("attachments", "‘survey.pdf’ must be smaller than 10MB"),
        ("attachments", "‘blank.pdf’ is empty"),
    ]
    exactly = PDF + b"0" * (10 * MB - len(PDF))
    assert Visit(client).send(ANSWERS, [("ok.pdf", exactly, "application/pdf")]).status_code == 200
    assert queued(connection) == 1


def test_more_than_five_files_are_refused(client: TestClient, connection: redis.Redis) -> None:
    files = [(f"photo{n}.png", PNG + bytes([n]), "image/png") for n in range(6)]
    response = Visit(client).send(ANSWERS, files)
    assert response.status_code == 422
    assert summary(response.text) == [
        ("attachments", "You can send up to 5 files. ‘photo5.png’ was not added")
    ]
    assert queued(connection) == 0


def test_files_already_added_are_kept_while_another_answer_is_corrected(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    visit = Visit(client)
    first = visit.send({**ANSWERS, "name": ""}, [("wall.png", PNG, "image/png")])
    assert summary(first.text) == [("name", "Enter your name")]
    assert "wall.png" in first.text and "Files you have already added" in first.text
    [token] = re.findall(r'name="kept_file" type="checkbox" value="([^"]+)"', first.text)

    forged = token.split(".")[0] + "." + "0" * 64
    second = visit.send(ANSWERS, kept_file=[token, forged])
    assert second.status_code == 200
    drain()
    [record] = feed_records(connection)
    assert [a.filename for a in record.attachments] == ["wall.png"]


def test_unticking_a_kept_file_leaves_it_out(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    visit = Visit(client)
    first = visit.send({**ANSWERS, "name": ""}, [("wall.png", PNG, "image/png")])
    assert "wall.png" in first.text
    assert visit.send(ANSWERS).status_code == 200  # the box was unticked: not sent back
    drain()
    [record] = feed_records(connection)
    assert record.attachments == []


def test_a_path_in_a_filename_is_dropped(
    client: TestClient, connection: redis.Redis, drain: Callable[[], None]
) -> None:
    response = Visit(client).send(
        ANSWERS, [("..\\..\\windows\\system32\\photo\u202egnp.png", PNG, "image/png")]
    )
    assert response.status_code == 200
    drain()
    [record] = feed_records(connection)
    assert record.attachments[0].filename == "photo gnp.png"
