"""The form's HTML pages: autoescaped Jinja2 templates, sent with protective headers.

Everything a person typed is escaped by the templates; the Content-Security-Policy allows
no script at all (the pages need none), so even a mistake in escaping could not run one.
A page is never cached: it may hold a person's answers or their reference. The templates
can be replaced one by one from ``INTAKE_TEMPLATES_DIR/web``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
)
from starlette.responses import HTMLResponse

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=4)
def environment(override_dir: Path | None) -> Environment:
    loaders: list[BaseLoader] = []
    if override_dir is not None:
        loaders.append(FileSystemLoader(str(override_dir / "web")))
    loaders.append(PackageLoader("channels.web", "templates"))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(
    template: str,
    status: int,
    override_dir: Path | None,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    html = environment(override_dir).get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


@lru_cache(maxsize=1)
def stylesheet() -> bytes:
    return (STATIC / "form.css").read_bytes()
