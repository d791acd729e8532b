"""Which checkable artifact a prompt asks for: the deliverable it names, not every format it
mentions. "Convert this Sigma rule to SPL" asks for SPL (not checked here), not for Sigma."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: How each kind is named, less the names of its look-alikes (YARA-L, SQL injection, the
#: sql.exe process).
_KIND = {
    "yara": r"yara(?![-\s]?l\b)",
    "sigma": r"sigma",
    "kql": r"kql|kusto",
    "sql": r"sql(?!\s*(?:injection|server|\.exe|i\b))",
    "json": r"json",
}
#: Languages a detection may be asked in that no validator here checks.
_UNCHECKED = (
    r"spl|splunk|eql|esql|es\|ql|lucene|kibana|elastic|snort|suricata|yara-l|chronicle|qradar"
    r"|aql|xql|s1ql|osquery|zeek|falco|regex|powershell|python|bash"
)
_NOUN = r"(?:rules?|signatures?|quer(?:y|ies)|detections?|searche?s?|statements?|hunts?)"
_CONVERSION = re.compile(
    r"\b(?:convert|translate|rewrite|port|turn|transform|migrate)\b", re.IGNORECASE
)
_INTO = r"\b(?:to|into|as|in)\s+(?:an?\s+|the\s+)?"
#: A name after one of these is the input: "this Sigma rule", "the following KQL query".
_SOURCE = re.compile(
    r"\b(?:this|these|that|the|following|attached|below|above|existing|my|our|given)\s*$",
    re.IGNORECASE,
)
_JSON_ASK = re.compile(
    r"\b(?:as|into|to)\s+(?:valid\s+|an?\s+)?json\b"
    r"|\b(?:return|output|respond|reply|answer|emit|produce|give\s+me)\b[^.\n]{0,30}\bjson\b"
    r"|\bjson\s+(?:only|output\s+(?:please|only)|format\s+(?:please|only))\b",
    re.IGNORECASE,
)


def _target(kind: str) -> re.Pattern[str]:
    return re.compile(rf"{_INTO}(?:{_KIND[kind]})\b", re.IGNORECASE)


def _deliverable(kind: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{_KIND[kind]})\s+{_NOUN}\b", re.IGNORECASE)


def _written(kind: str) -> re.Pattern[str]:
    return re.compile(
        rf"\b(?:write|generate|create|draft|produce|craft|give\s+me|need|want)\s+"
        rf"(?:an?\s+|some\s+)?(?:{_KIND[kind]})\b",
        re.IGNORECASE,
    )


_TARGET = {kind: _target(kind) for kind in _KIND}
_DELIVERABLE = {kind: _deliverable(kind) for kind in _KIND}
_WRITTEN = {kind: _written(kind) for kind in _KIND}
_UNCHECKED_TARGET = re.compile(rf"{_INTO}(?:{_UNCHECKED})\b", re.IGNORECASE)


def _named_as_output(kind: str, prompt: str) -> bool:
    """`kind` named as what to write ("a YARA rule", "in KQL"), not as the input."""
    if kind == "json":
        return bool(_JSON_ASK.search(prompt))
    if _TARGET[kind].search(prompt) or _WRITTEN[kind].search(prompt):
        return True
    return any(not _SOURCE.search(prompt[: m.start()]) for m in _DELIVERABLE[kind].finditer(prompt))


def asked_kind(kinds: Iterable[str], prompt: str) -> str | None:
    """The one kind among `kinds` the prompt asks to be written; None when it asks for none,
    for several, or for a language none of them is."""
    kinds = list(kinds)
    if _CONVERSION.search(prompt):
        targets = [kind for kind in kinds if _TARGET[kind].search(prompt)]
        if _UNCHECKED_TARGET.search(prompt):
            return None
        return targets[0] if len(targets) == 1 else None
    named = [kind for kind in kinds if _named_as_output(kind, prompt)]
    if "kql" in named and re.search(r"\b(?:kibana|elastic)\b", prompt, re.IGNORECASE):
        named.remove("kql")  # Kibana's KQL, not Kusto's
    if len(named) != 1:
        return None
    return named[0]
