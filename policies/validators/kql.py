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

from policies.validators.base import CheckOptions, Verdict, fenced

#: A table piped into a tabular operator: how a KQL answer written without a fence starts.
_PIPELINE = re.compile(
    r"^\s*(?:let\s+\w+\s*=[^;]*;\s*)*[A-Za-z_]\w*\s*\|\s*"
    r"(?:where|project|summarize|extend|join|take|limit|sort|order|top|count|distinct|parse"
    r"|mv-expand|make-series|union|lookup|search|render)\b",
)
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
        return answer.strip() if _PIPELINE.match(answer) else None

    def check(self, artifact: str, options: CheckOptions) -> Verdict:
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

    def constraint(self, options: CheckOptions) -> dict[str, Any] | None:
        return None
