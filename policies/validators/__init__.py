"""Validators for answers whose form can be checked: YARA, Sigma, KQL, SQL and JSON.

`pick` finds which one applies to an answer; `validator` looks one up by kind and fails with
the list of kinds it knows.
"""

from __future__ import annotations

import re

from policies.types import TaskType
from policies.validators.base import CheckOptions, Validator, Verdict
from policies.validators.json_output import JsonValidator
from policies.validators.kql import KqlValidator
from policies.validators.sigma import TARGETS, SigmaRuleValidator
from policies.validators.sql import SqlValidator
from policies.validators.yara import YaraValidator

__all__ = ["TARGETS", "CheckOptions", "Validator", "Verdict", "asked_for", "pick", "validator"]

_REGISTRY: dict[str, Validator] = {
    v.kind: v
    for v in (
        YaraValidator(),
        SigmaRuleValidator(),
        KqlValidator(),
        SqlValidator(),
        JsonValidator(),
    )
}
#: The kinds tried on each task type's answers, in order.
_BY_TASK: dict[TaskType, tuple[str, ...]] = {
    TaskType.RULE_GENERATION: ("yara", "sigma", "kql", "sql"),
    TaskType.STRUCTURED_PARSING: ("json",),
}

#: The words that name each kind in a prompt.
_NAMES = {"yara": "yara", "sigma": "sigma", "kql": "kql|kusto", "sql": "sql", "json": "json"}
#: How a prompt asks for each kind. JSON is asked for as output ("as JSON", "JSON format"),
#: not merely named: "parse this JSON log" wants an answer about it.
_NAMED = {
    **{kind: re.compile(rf"\b(?:{names})\b", re.IGNORECASE) for kind, names in _NAMES.items()},
    "json": re.compile(
        r"\b(?:as|in|into|to|return|output|emit|with)\s+(?:valid\s+|an?\s+)?json\b"
        r"|\bjson\s+(?:output|format)\b",
        re.IGNORECASE,
    ),
}
#: "convert this Sigma rule to YARA": the kind after to/into/as is the one asked for.
_INTO = {
    kind: re.compile(rf"\b(?:to|into|as|in)\s+(?:an?\s+)?(?:{names})\b", re.IGNORECASE)
    for kind, names in _NAMES.items()
}


def validator(kind: str) -> Validator:
    """The validator of `kind`; KeyError naming the kinds there are."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise KeyError(f"no validator {kind!r}; valid: {', '.join(_REGISTRY)}") from None


def checks(task_type: TaskType, options: CheckOptions) -> bool:
    """Whether answers of this task type (or with these options) can be checked at all."""
    return task_type in _BY_TASK or options.schema is not None


def asked_for(task_type: TaskType, prompt: str, options: CheckOptions | None = None) -> str | None:
    """The kind of artifact the prompt asks for by name, among its task type's; None when
    it names none, or several without saying which is the answer. A Sigma `target` asks
    for a Sigma rule (the router converts it)."""
    kinds = _BY_TASK.get(task_type, ())
    if options is not None and options.target is not None and "sigma" in kinds:
        return "sigma"
    named = [kind for kind in kinds if _NAMED[kind].search(prompt)]
    if len(named) == 1:
        return named[0]
    into = [kind for kind in named if _INTO[kind].search(prompt)]
    return into[0] if len(into) == 1 else None


def pick(
    task_type: TaskType, answer: str, options: CheckOptions, wanted: str | None = None
) -> tuple[Validator, str] | None:
    """The validator that applies to `answer` and the artifact it checks, or None. A schema
    makes any answer a JSON one; a `wanted` kind is the only one looked for."""
    if options.schema is not None:
        kinds: tuple[str, ...] = ("json",)
    elif wanted is not None:
        kinds = (wanted,)
    else:
        kinds = _BY_TASK.get(task_type, ())
    for kind in kinds:
        found = _REGISTRY[kind].found_in(answer)
        if found is not None or options.schema is not None:
            return _REGISTRY[kind], found if found is not None else answer
    return None
