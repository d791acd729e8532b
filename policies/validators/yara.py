"""YARA rules, compiled by YARA-X."""

from __future__ import annotations

import re
from pathlib import Path

import yara_x

from policies.validators.base import CheckOptions, Constraint, Verdict, fenced, first_fence

#: A subset of YARA every sentence of which compiles: one rule, patterns $s1 to $s3, `any`
#: or `all of them`. Its sentences are bounded, so one finished under it compiles whatever
#: the model; it says less than a rule of the model's own could.
GRAMMAR = (Path(__file__).parent / "yara.ebnf").read_text()
_RULE = re.compile(r"^\s*(?:(?:private|global)\s+)*rule\s+\w+", re.MULTILINE)


class YaraValidator:
    kind = "yara"
    noun = "YARA rule"

    def found_in(self, answer: str) -> str | None:
        block = fenced(answer, ("yara", "yar"))
        if block is not None:
            return block
        candidate = first_fence(answer) or answer
        start = _RULE.search(candidate)
        if start is None or "condition" not in candidate:
            return None
        # Imports before the first rule belong to it.
        head = candidate[: start.start()]
        imports = "\n".join(ln for ln in head.splitlines() if ln.strip().startswith("import "))
        body = candidate[start.start() : candidate.rfind("}") + 1]
        return f"{imports}\n{body}".strip()

    def check(self, artifact: str, options: CheckOptions) -> Verdict:
        compiler = yara_x.Compiler()
        # An answer must not make the router read its files.
        compiler.enable_includes(False)
        try:
            compiler.add_source(artifact, origin="answer.yar")
        except yara_x.CompileError:
            errors = compiler.errors()
            first = errors[0] if errors else None
            where = f" (line {first['line']}, column {first['column']})" if first else ""
            title = first["title"] if first else "does not compile"
            return Verdict(self.kind, False, f"{title}{where}")
        warnings = [f"{w['title']} (line {w['line']})" for w in compiler.warnings()]
        compiler.build()
        return Verdict(self.kind, True, warnings=warnings)

    def constraint(self, options: CheckOptions) -> Constraint | None:
        return Constraint(grammar=GRAMMAR)
