"""Validators for answers whose form can be checked: YARA, Sigma, SQL and JSON.

`pick` finds which one applies to an answer; `validator` looks one up by kind and fails with
the list of kinds it knows.
"""

from __future__ import annotations

from policies.types import TaskType
from policies.validators.base import CheckOptions, Validator, Verdict
from policies.validators.json_output import JsonValidator
from policies.validators.sigma import TARGETS, SigmaRuleValidator
from policies.validators.sql import SqlValidator
from policies.validators.yara import YaraValidator

__all__ = ["TARGETS", "CheckOptions", "Validator", "Verdict", "pick", "validator"]

_REGISTRY: dict[str, Validator] = {
    v.kind: v for v in (YaraValidator(), SigmaRuleValidator(), SqlValidator(), JsonValidator())
}
#: The kinds tried on each task type's answers, in order.
_BY_TASK: dict[TaskType, tuple[str, ...]] = {
    TaskType.RULE_GENERATION: ("yara", "sigma", "sql"),
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


def pick(task_type: TaskType, answer: str, options: CheckOptions) -> tuple[Validator, str] | None:
    """The validator that applies to `answer` and the artifact it checks, or None. A schema
    makes any answer a JSON one."""
    kinds = ("json",) if options.schema is not None else _BY_TASK.get(task_type, ())
    for kind in kinds:
        found = _REGISTRY[kind].found_in(answer)
        if found is not None or options.schema is not None:
            return _REGISTRY[kind], found if found is not None else answer
    return None
