"""Customer-facing wording, rendered from Jinja2 templates.

The shipped templates live in ``workers/templates``; a file of the same name in
``INTAKE_TEMPLATES_DIR`` replaces one, so a landlord can reword a message without code.
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
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)

from gateway.errors import TemplateError


@lru_cache(maxsize=4)
def environment(override_dir: Path | None) -> Environment:
    loaders: list[BaseLoader] = []
    if override_dir is not None:
        loaders.append(FileSystemLoader(str(override_dir)))
    loaders.append(PackageLoader("workers", "templates"))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def compile_all(override_dir: Path | None) -> int:
    """Compile every template now (as a worker starts), not on its first use; returns how
    many. A template that does not compile stops the start with its name and line."""
    env = environment(override_dir)
    names = env.list_templates(extensions=["j2"])
    for name in names:
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            where = exc.filename or name
            raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    return len(names)


def render(name: str, override_dir: Path | None, **values: Any) -> str:
    return environment(override_dir).get_template(name).render(**values)


def render_if_present(name: str, override_dir: Path | None, **values: Any) -> str | None:
    """``name`` rendered, or None when no such template exists (an optional variant, such
    as the short SMS form of a message)."""
    try:
        template = environment(override_dir).get_template(name)
    except TemplateNotFound:
        return None
    return template.render(**values)
