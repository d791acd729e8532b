"""What a validator says of an answer, and how the checkable part is found in it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class CheckOptions:
    """What the request asked of the output."""

    target: str | None = None
    """Query language a Sigma rule is converted to: `splunk` or `kusto`."""
    schema: dict[str, Any] | None = None
    """JSON Schema a JSON answer must fit."""


@dataclass(frozen=True)
class Constraint:
    """How vLLM can hold a repair to a format."""

    grammar: str | None = None
    """A grammar (vLLM's structured outputs) that narrows what the answer can say; finite, so
    the answer needs no token cap."""
    response_format: dict[str, Any] | None = None
    """A response format that fixes the syntax only (JSON mode)."""


@dataclass(frozen=True)
class Verdict:
    """A validator's finding on one artifact."""

    kind: str
    """yara, sigma, sql or json."""
    ok: bool
    error: str | None = None
    """The first error, with its place when the tool gives one."""
    warnings: list[str] = field(default_factory=list)
    conversions: dict[str, str] = field(default_factory=dict)
    """The artifact in other languages (a Sigma rule as `splunk` or `kusto`)."""


class Validator(Protocol):
    """Finds one kind of artifact in an answer and checks it with that format's own tool."""

    kind: str
    noun: str
    """What the artifact is called in a message: "YARA rule", "JSON"."""

    def found_in(self, answer: str) -> str | None:
        """The artifact in `answer`, or None when it holds none of this kind."""
        ...

    def check(self, artifact: str, options: CheckOptions) -> Verdict: ...

    def constraint(self, options: CheckOptions) -> Constraint | None:
        """How vLLM can hold a repair to this format, or None when it has no way."""
        ...


def fenced(answer: str, languages: tuple[str, ...]) -> str | None:
    """The first fenced block tagged with one of `languages`."""
    for match in _FENCE.finditer(answer):
        if match.group(1).lower() in languages:
            return match.group(2).strip()
    return None


def first_fence(answer: str) -> str | None:
    """The first fenced block, whatever its tag."""
    match = _FENCE.search(answer)
    return match.group(2).strip() if match else None
