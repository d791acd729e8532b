"""SQL queries, parsed by sqlglot (syntax only: tables and functions are not known to it)."""

from __future__ import annotations

import re

import sqlglot
from sqlglot.errors import ParseError, TokenError

from policies.validators.base import CheckOptions, Constraint, Verdict, fenced

_STATEMENT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class SqlValidator:
    kind = "sql"
    noun = "SQL query"

    def found_in(self, answer: str) -> str | None:
        block = fenced(answer, ("sql", "postgresql", "sqlite", "tsql", "mysql"))
        if block is not None:
            return block
        return answer.strip() if _STATEMENT.match(answer) else None

    def check(self, artifact: str, options: CheckOptions) -> Verdict:
        try:
            sqlglot.parse(artifact)
        except ParseError as exc:
            first = exc.errors[0] if exc.errors else {}
            where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
            return Verdict(self.kind, False, f"{first.get('description', 'parse error')}{where}")
        except TokenError as exc:
            return Verdict(self.kind, False, str(exc))
        return Verdict(self.kind, True)

    def constraint(self, options: CheckOptions) -> Constraint | None:
        return None
