"""The response package's Jinja2 templates (shipped under response/templates/, or a configured file)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

DIRECTORY = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(DIRECTORY),
        autoescape=select_autoescape(["html.j2"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def template(name: str) -> Template:
    return environment().get_template(name)


def template_from_file(path: str) -> Template:
    """An operator's own template (e.g. the postmortem), rendered with the same environment."""
    return environment().from_string(Path(path).read_text(encoding="utf-8"))
