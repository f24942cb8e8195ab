"""Google's partial-response `fields` parameter: `kind,nextPageToken,files(id,owners(emailAddress))`.

Selections nest with parentheses, `a/b` is a path, `*` keeps everything at its level. Applied to a
list, a selection applies to each element. An invalid selection is refused with 400 invalidParameter,
as the Google front end refuses it.
"""

from __future__ import annotations

from typing import Any

from simulator.server import ApiError

Selection = dict[str, Any]  # name -> sub-selection (None = the whole value)


def parse_fields(text: str) -> Selection:
    pos = 0

    def fail(why: str) -> ApiError:
        return ApiError(400, "invalidParameter", f"Invalid field selection {text}: {why}")

    def selection(depth: int) -> Selection:
        nonlocal pos
        out: Selection = {}
        while True:
            start = pos
            while pos < len(text) and text[pos] not in ",()":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise fail(f"empty name at {start}")
            sub: Selection | None = None
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = selection(depth + 1)
                if pos >= len(text) or text[pos] != ")":
                    raise fail("unbalanced parentheses")
                pos += 1
            _add(out, name.split("/"), sub)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if pos < len(text) and text[pos] == ")" and depth == 0:
                raise fail("unbalanced parentheses")
            return out

    result = selection(0)
    if pos != len(text):
        raise fail(f"unexpected {text[pos]!r} at {pos}")
    return result


def _add(out: Selection, parts: list[str], sub: Selection | None) -> None:
    node: Selection = out
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if child is None:
            return  # the whole value is already selected
        node = child
    last = parts[-1]
    if last not in node:
        node[last] = sub
    elif node[last] is not None:
        node[last] = None if sub is None else {**node[last], **sub}


def apply_fields(value: Any, selection: Selection | None) -> Any:
    if selection is None or "*" in selection and len(selection) == 1:
        return value
    if isinstance(value, list):
        return [apply_fields(v, selection) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, sub in selection.items():
        if key == "*":
            out.update({k: v for k, v in value.items() if k not in out})
        elif key in value:
            out[key] = apply_fields(value[key], sub)
    return out
