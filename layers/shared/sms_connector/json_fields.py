"""Queue messages checked field by field, the way a pydantic model would check them, without it.

The functions that serve no HTTP API (the sender, the fallback) read one JSON message per SQS
record; importing pydantic for that costs each of their cold starts about 45 ms (README,
Performance). Their problems have pydantic's shape (`loc`, `type`, `msg`, `ctx`, `input`),
so logs and tools read them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Text:
    """A string field of `min_length` to `max_length` characters, which `check` may refuse
    further (ValueError); `default` when it is left out (unless `required`), and None allowed
    when `nullable`."""

    min_length: int = 0
    max_length: int | None = None
    required: bool = True
    nullable: bool = False
    default: str | None = None
    check: Callable[[str], str] | None = None


class Malformed(ValueError):
    """What is wrong with a message, field by field."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['type']}" for p in problems))
        self.problems = problems

    def errors(self) -> list[dict[str, Any]]:
        return self.problems


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(text: str | bytes, fields: dict[str, Text]) -> dict[str, Any]:
    """The fields of the JSON object `text` (others are ignored), or Malformed."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
        # A lone surrogate ("\ud800") is no text: strict JSON parsers refuse it, as pydantic's does.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError) as exc:
        reason = "a lone surrogate" if isinstance(exc, UnicodeError) else str(exc)
        raise Malformed([_problem((), "json_invalid", f"Invalid JSON: {reason}", text)]) from None
    return check(value, fields)


def check(value: Any, fields: dict[str, Text]) -> dict[str, Any]:
    """The fields of the object `value` (others are ignored), or Malformed."""
    if not isinstance(value, dict):
        raise Malformed([_problem((), "model_type", "Input should be an object", value)])
    found: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, spec in fields.items():
        if name not in value:
            if spec.required:
                problems.append(_problem((name,), "missing", "Field required", value))
            found[name] = spec.default
            continue
        given = value[name]
        if given is None and spec.nullable:
            found[name] = None
        elif not isinstance(given, str):
            problems.append(_problem((name,), "string_type", "Input should be a valid string", given))
        elif len(given) < spec.min_length:
            unit = "character" if spec.min_length == 1 else "characters"
            problems.append(
                _problem(
                    (name,),
                    "string_too_short",
                    f"String should have at least {spec.min_length} {unit}",
                    given,
                    {"min_length": spec.min_length},
                )
            )
        elif spec.max_length is not None and len(given) > spec.max_length:
            problems.append(
                _problem(
                    (name,),
                    "string_too_long",
                    f"String should have at most {spec.max_length} characters",
                    given,
                    {"max_length": spec.max_length},
                )
            )
        elif spec.check is not None:
            try:
                found[name] = spec.check(given)
            except ValueError as exc:
                problems.append(_problem((name,), "value_error", f"Value error, {exc}", given))
        else:
            found[name] = given
    if problems:
        raise Malformed(problems)
    return found


def _problem(
    loc: tuple[str, ...], kind: str, message: str, given: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"loc": loc, "type": kind, "msg": message, "input": given} | ({"ctx": ctx} if ctx else {})
