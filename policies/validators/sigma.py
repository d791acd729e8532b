"""Sigma rules, parsed and validated by pySigma, and converted to Splunk SPL or KQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from sigma.backends.kusto.kusto import KustoBackend
from sigma.backends.splunk.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError, SigmaTransformationError
from sigma.pipelines.microsoftxdr.microsoftxdr import microsoft_xdr_pipeline
from sigma.pipelines.splunk.splunk import splunk_windows_pipeline
from sigma.rule import SigmaRule
from sigma.validation import SigmaValidator
from sigma.validators.core import validators as core_validators

from policies.validators.base import CheckOptions, Constraint, Verdict, fenced, first_fence

#: pySigma's checks, less the two that download MITRE's data on first use (offline here).
_CHECKS = [v for name, v in core_validators.items() if name not in {"attacktag", "d3_fendtag"}]
#: Each target's backend with the pipeline for Windows logs, and without one for the rest.
_TARGETS: dict[str, tuple[Callable[..., Any], Callable[[], Any]]] = {
    "splunk": (SplunkBackend, splunk_windows_pipeline),
    "kusto": (KustoBackend, microsoft_xdr_pipeline),
}
TARGETS = tuple(_TARGETS)


class SigmaRuleValidator:
    kind = "sigma"
    noun = "Sigma rule"

    def found_in(self, answer: str) -> str | None:
        block = fenced(answer, ("yaml", "yml", "sigma")) or first_fence(answer) or answer
        return block if "detection:" in block and "logsource:" in block else None

    def check(self, artifact: str, options: CheckOptions) -> Verdict:
        try:
            documents = list(yaml.safe_load_all(artifact))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            return Verdict(self.kind, False, f"YAML: {getattr(exc, 'problem', exc)}{where}")
        if not documents or not all(isinstance(d, dict) for d in documents):
            return Verdict(self.kind, False, "each YAML document must be a mapping")
        rules = SigmaCollection.from_dicts(documents, collect_errors=True)
        if rules.errors:
            first = rules.errors[0]
            return Verdict(self.kind, False, f"{type(first).__name__}: {first}")
        errors: list[str] = []
        plain = [rule for rule in rules.rules if isinstance(rule, SigmaRule)]
        try:
            for rule in plain:  # conditions are parsed only when asked
                for condition in rule.detection.parsed_condition:
                    condition.parse()
        except SigmaError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            return Verdict(self.kind, False, errors[0])
        # A fresh validator each time: it remembers the rules it saw (duplicate checks).
        issues = SigmaValidator(_CHECKS).validate_rules(iter(plain))
        warnings = [f"{type(i).__name__}: {i.description}" for i in issues]
        conversions: dict[str, str] = {}
        if options.target is not None:
            try:
                conversions[options.target] = _convert(documents, options.target)
            except SigmaError as exc:
                return Verdict(self.kind, False, f"to {options.target}: {exc}", warnings)
        return Verdict(self.kind, True, warnings=warnings, conversions=conversions)

    def constraint(self, options: CheckOptions) -> Constraint | None:
        return None


def _convert(documents: list[dict[str, Any]], target: str) -> str:
    """The rules as `target` queries; pipelines change rules in place, so each run parses
    afresh, and a rule outside the pipeline's log sources converts without one."""
    backend, pipeline = _TARGETS[target]
    try:
        queries = backend(processing_pipeline=pipeline()).convert(
            SigmaCollection.from_dicts(documents)
        )
    except SigmaTransformationError:
        queries = backend().convert(SigmaCollection.from_dicts(documents))
    return "\n".join(str(q) for q in queries)
