"""On-call configuration files (YAML or TOML): bounded reading and validation naming file and field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from oncall.errors import OncallInputError
from oncall.spec import OncallDocument

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 20


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML that refuses anchors and aliases (a few aliases can expand to gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in on-call files", event.start_mark
            )
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) are not allowed in on-call files", event.start_mark
            )
        return super().compose_node(parent, index)


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


def parse_text(text: str, *, where: str, toml: bool = False) -> dict[str, Any]:
    """The mapping in `text` (YAML, or TOML when `toml`), bounded in size, depth and aliases."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise OncallInputError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    try:
        data = tomllib.loads(text) if toml else yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - safe loader
    except tomllib.TOMLDecodeError as exc:
        raise OncallInputError(f"{where}: not valid TOML: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise OncallInputError(
            f"{where}:{line} not valid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from exc
    except RecursionError:
        raise OncallInputError(f"{where}: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OncallInputError(f"{where}: the top level must be a mapping (responders:, schedules:, ...)")
    if _depth(data) > MAX_DEPTH:
        raise OncallInputError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    return data


def validate(data: Any, *, where: str) -> OncallDocument:
    try:
        return OncallDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:10]:
            field = ".".join(str(part) for part in error["loc"]) or "(document)"
            problems.append(f"{field}: {error['msg']}")
        raise OncallInputError(f"{where}: " + "; ".join(problems)) from None


def load_file(path: Path) -> OncallDocument:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise OncallInputError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OncallInputError(f"{path}: cannot read: {exc}") from exc
    data = parse_text(text, where=str(path), toml=path.suffix.lower() == ".toml")
    return validate(data, where=str(path))
