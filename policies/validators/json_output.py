"""JSON answers: well-formed, and fitting the caller's schema when one was given."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from policies.validators.base import CheckOptions, Constraint, Verdict, fenced, first_fence

JSON_MODE = {"type": "json_object"}


class JsonValidator:
    kind = "json"
    noun = "JSON"

    def found_in(self, answer: str) -> str | None:
        block = fenced(answer, ("json",)) or first_fence(answer) or answer.strip()
        return block if block.startswith(("{", "[")) else None

    def check(self, artifact: str, options: CheckOptions) -> Verdict:
        try:
            document = json.loads(artifact)
        except ValueError as exc:
            return Verdict(self.kind, False, f"not JSON: {exc}")
        if options.schema is None:
            return Verdict(self.kind, True)
        errors = sorted(
            Draft202012Validator(options.schema).iter_errors(document), key=lambda e: list(e.path)
        )
        if errors:
            return Verdict(self.kind, False, f"{errors[0].json_path}: {errors[0].message}")
        return Verdict(self.kind, True)

    def constraint(self, options: CheckOptions) -> Constraint | None:
        # A caller's schema is already the request's response_format.
        return None if options.schema is not None else Constraint(response_format=JSON_MODE)
