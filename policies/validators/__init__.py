"""Validators for answers whose form can be checked: YARA, Sigma, KQL, SQL and JSON.

`pick` finds which one applies to an answer; `validator` looks one up by kind and fails with
the list of kinds it knows.
"""

from __future__ import annotations

from policies.types import TaskType
from policies.validators.asked import asked_kind
from policies.validators.base import CheckOptions, Constraint, Validator, Verdict
from policies.validators.json_output import JsonValidator
from policies.validators.kql import KqlValidator
from policies.validators.sigma import TARGETS, SigmaRuleValidator
from policies.validators.sql import SqlValidator
from policies.validators.yara import YaraValidator

__all__ = [
    "TARGETS",
    "CheckOptions",
    "Constraint",
    "Validator",
    "Verdict",
    "asked_for",
    "pick",
    "validator",
]

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
    """The kind of artifact the prompt asks to be written, among its task type's; None when
    it asks for none, several, or a language none of them is. A Sigma `target` asks for a
    Sigma rule (the router converts it)."""
    kinds = _BY_TASK.get(task_type, ())
    if options is not None and options.target is not None and "sigma" in kinds:
        return "sigma"
    return asked_kind(kinds, prompt)


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
