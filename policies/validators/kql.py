"""KQL queries (Microsoft Sentinel, Defender, Azure Data Explorer), parsed with the Kusto
grammar (syntax only: tables and columns are not known to it)."""

from __future__ import annotations

import re
import threading
from typing import Any

from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from kusto_query_language_parser.parse_tools.KqlLexer import KqlLexer
from kusto_query_language_parser.parse_tools.KqlParser import KqlParser

from policies.validators.base import CheckOptions, Constraint, Verdict, fenced, first_fence

#: A table (or a union or search) piped into a tabular operator, after any `let` statements
#: and `//` comments: how a KQL query starts on its line. PowerShell's `ps | where {...}` and
#: a shell's `ls | sort` are not.
_PIPELINE = re.compile(
    r"^(?:[ \t]*//[^\n]*\n)*[ \t]*(?:let\s+\w+\s*=[^;]*;\s*)*"
    r"(?:union\b[^|\n]*|search\b[^|\n]*|[A-Za-z_]\w*)\s*\|\s*"
    r"(?:where(?!\s*[{-])|project|summarize|extend|join|take|limit|(?:sort|order)\s+by"
    r"|top\s+\d|count\b|distinct|parse|mv-expand|make-series|lookup|render)\b",
    re.MULTILINE,
)
#: Bracket depth past which ANTLR's recursive prediction runs out of stack (about 60 here)
#: or takes seconds: refused before parsing. Written queries nest a few levels.
MAX_DEPTH = 24
MAX_LENGTH = 20_000
# ANTLR's parser shares its prediction caches across instances without a lock.
_LOCK = threading.Lock()


class _FirstError(ErrorListener):  # type: ignore[misc]
    """Keeps the first syntax error instead of printing it."""

    def __init__(self) -> None:
        self.error: str | None = None

    def syntaxError(
        self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        if self.error is None:
            # ANTLR lists every token it could take, often a hundred: kept only when short.
            head, _, expected = msg.partition(" expecting {")
            if expected.count(",") > 5:
                msg = head
            self.error = f"{msg} (line {line}, column {column + 1})"


class KqlValidator:
    kind = "kql"
    noun = "KQL query"

    def found_in(self, answer: str) -> str | None:
        block = fenced(answer, ("kql", "kusto"))
        if block is not None:
            return block
        fence = first_fence(answer)
        if fence is not None and _PIPELINE.match(fence):
            return fence
        start = _PIPELINE.search(answer)
        if start is None:
            return None
        # Prose may come before the query; the query ends at the first blank line.
        return answer[start.start() :].split("\n\n", 1)[0].strip()

    def check(self, artifact: str, options: CheckOptions) -> Verdict:
        if len(artifact) > MAX_LENGTH:
            return Verdict(self.kind, False, f"longer than {MAX_LENGTH} characters")
        depth = _depth(artifact)
        if depth > MAX_DEPTH:
            return Verdict(self.kind, False, f"brackets nest {depth} deep (at most {MAX_DEPTH})")
        errors = _FirstError()
        with _LOCK:
            lexer = KqlLexer(InputStream(artifact))
            lexer.removeErrorListeners()
            lexer.addErrorListener(errors)
            parser = KqlParser(CommonTokenStream(lexer))
            parser.removeErrorListeners()
            parser.addErrorListener(errors)
            parser.top()
        if errors.error is not None:
            return Verdict(self.kind, False, errors.error)
        return Verdict(self.kind, True)

    def constraint(self, options: CheckOptions) -> Constraint | None:
        return None


def _depth(text: str) -> int:
    """The deepest bracket nesting in `text` (brackets in strings counted too: an upper
    bound)."""
    deepest = depth = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth = max(0, depth - 1)
    return deepest
