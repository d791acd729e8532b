"""Reading a batch chunk's answer back item by item, by the numbers the items were sent with.

A call asked about some of a batch's items (numbered from 1 as in the whole batch) answers as text:
`7. malicious`, `7) ...`, `Item 7: ...`, `[7] ...`, an answer running on over several lines, or
a JSON object or list of `{item, answer}` (the whole entries of one cut off at a token limit).
Each item gets its answer, or why it has none: the model skipped it, stopped short of it, left
it empty, or (for a label set) answered with something not in the set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: A line that starts an item's answer: an optional bullet and "item", the number, a closer.
_NUMBERED = re.compile(
    r"^\s*(?:[-*•]\s*)?(?:\*\*)?(?:item\s*#?\s*)?"
    r"(?:\[(\d{1,5})\]|\((\d{1,5})\)|#?(\d{1,5})\s*[.):\-–—])"
    r"(?:\*\*)?\s*[.):\-–—]?\s*(.*)$",
    re.IGNORECASE,
)
#: One whole `{"item": 7, "label": "..."}` entry (or `answer`), found in JSON cut off midway.
_ENTRY = re.compile(
    r'\{\s*"(?:item|index|id)"\s*:\s*"?(\d{1,5})"?\s*,\s*"(?:label|answer)"\s*:\s*'
    r'("(?:[^"\\]|\\.)*")\s*\}'
)
_EDGE = re.compile(r"^[\s\"'`*_.,;:!()\[\]-]+|[\s\"'`*_.,;:!()\[\]-]+$")


@dataclass(frozen=True)
class ItemAnswer:
    """One item's answer, or why there is none."""

    index: int
    """The item's position in the whole batch, from 0."""
    answer: str | None
    """The answer (the label, for a label set); None when missing."""
    problem: str | None = None
    """Why the answer is missing: skipped, empty, or not a label of the set."""


def read_answers(
    text: str, indices: Sequence[int], labels: Sequence[str] = (), *, cut_short: bool = False
) -> list[ItemAnswer]:
    """The answers of the items at `indices` (from 0; numbered from 1 in the text), in order.
    With `cut_short` (the answer hit its token limit), an item without an answer says so."""
    wanted = [index + 1 for index in indices]
    found = _from_json(text, wanted)
    if found is None:
        found = _from_lines(text, wanted)
    unanswered = (
        "cut short: the answer reached its token limit before item "
        if cut_short
        else ("skipped: no answer numbered ")
    )
    answers = []
    for number in wanted:
        raw = found.get(number)
        index = number - 1
        if raw is None:
            answers.append(ItemAnswer(index, None, unanswered + str(number)))
        elif not raw.strip():
            answers.append(ItemAnswer(index, None, "garbled: empty answer"))
        elif labels:
            answers.append(_as_label(index, raw, labels))
        else:
            answers.append(ItemAnswer(index, raw.strip()))
    return answers


def _from_lines(text: str, wanted: Sequence[int]) -> dict[int, str]:
    found: dict[int, list[str]] = {}
    current: int | None = None
    for line in text.splitlines():
        match = _NUMBERED.match(line)
        number = int(next(g for g in match.groups()[:3] if g)) if match else None
        if number is not None and number in wanted and number not in found and match:
            current = number
            found[current] = [match.group(4).strip()]
        elif number is not None and number not in wanted:
            current = None  # another list (or the items echoed back): not an answer
        elif current is not None and line.strip():
            found[current].append(line.strip())
    return {n: "\n".join(part for part in parts if part) for n, parts in found.items()}


def _from_json(text: str, wanted: Sequence[int]) -> dict[int, str] | None:
    """Answers given as JSON: {"7": "..."}, [{"item": 7, "answer": "..."}] or a bare list in
    item order; None when the text is not such JSON."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    if not body.startswith(("{", "[")):
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return _whole_entries(body)
    if isinstance(data, dict):
        data = data.get("answers", data)
    if isinstance(data, dict):
        return {int(k): _text(v) for k, v in data.items() if str(k).isdigit()}
    if not isinstance(data, list):
        return None
    if all(isinstance(entry, dict) for entry in data):
        out = {}
        for entry in data:
            number = entry.get("item", entry.get("index", entry.get("id")))
            if isinstance(number, int) or (isinstance(number, str) and number.isdigit()):
                out[int(number)] = _text(entry.get("answer", entry.get("label", "")))
        return out
    return {number: _text(value) for number, value in zip(wanted, data, strict=False)}


def _whole_entries(body: str) -> dict[int, str] | None:
    """The entries JSON cut off midway (at a token limit) still holds whole; None for none."""
    found = {int(m.group(1)): json.loads(m.group(2)) for m in _ENTRY.finditer(body)}
    return found or None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def named_label(text: str, labels: Sequence[str]) -> str | None:
    """The label of `labels` that `text` gives: all of its first line, or that line's first
    words before a reason ("Malicious - encoded command"); None when it gives none."""
    by_name = {label.casefold(): label for label in labels}
    lines = text.strip().splitlines()
    answer = _EDGE.sub("", lines[0]).casefold() if lines else ""
    if answer in by_name:
        return by_name[answer]
    for name in sorted(by_name, key=len, reverse=True):
        if answer.startswith(name) and not answer[len(name) : len(name) + 1].isalnum():
            return by_name[name]
    return None


def _as_label(index: int, raw: str, labels: Sequence[str]) -> ItemAnswer:
    label = named_label(raw, labels)
    if label is not None:
        return ItemAnswer(index, label)
    shown = raw.strip().splitlines()[0][:60]
    return ItemAnswer(index, None, f"garbled: {shown!r} is not one of {', '.join(labels)}")
