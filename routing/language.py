"""Which language a request is written in, judged on its instruction, not its pasted material."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from policies.classification import foreign_script_share

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

#: Function words that tell an instruction's language; data kept apart from the code.
_WORDS = json.loads(
    (Path(__file__).resolve().parent / "data" / "function_words.json").read_text("utf-8")
)
ENGLISH = frozenset(_WORDS["english"])
#: Frequent function words of Latin-script languages (and a few request verbs), by language.
OTHER_LATIN: dict[str, list[str]] = _WORDS["other_latin"]
_OTHER = {w for words in OTHER_LATIN.values() for w in words} - ENGLISH


@dataclass(frozen=True)
class LanguageGuess:
    """The instruction's language evidence."""

    foreign: bool
    """True when the instruction is written mainly in a language other than English."""
    share: float
    """Foreign share of the evidence, 0-1."""
    reason: str


def instruction_text(prompt: str) -> str:
    """The part of a prompt that asks: its first line, or first lines while they are short.

    Pasted logs, mail and foreign snippets usually follow the instruction on lines of their
    own, and decide neither what is asked nor the request's language.
    """
    words = 0
    kept: list[str] = []
    for line in prompt.strip().splitlines():
        if not line.strip():
            if kept:
                break
            continue
        kept.append(line.strip())
        words += len(line.split())
        if words >= 4 or line.rstrip().endswith(":"):
            break
    return " ".join(kept)


def guess(prompt: str) -> LanguageGuess:
    """Is the instruction written mainly in another language?"""
    return guess_text(instruction_text(prompt))


def pasted_foreign_share(prompt: str) -> float:
    """How foreign the material after the instruction is, 0-1 (0 when there is none)."""
    head = instruction_text(prompt)
    body = prompt.strip()[len(head) :] if prompt.strip().startswith(head) else ""
    lines = [ln for ln in prompt.strip().splitlines()[1:] if ln.strip()]
    body = body or "\n".join(lines)
    if not body.strip():
        return 0.0
    found = guess_text(body)
    return found.share if found.foreign else 0.0


def guess_text(text: str) -> LanguageGuess:
    """Is `text` written mainly in a language other than English?"""
    script = foreign_script_share(text)
    if script >= 0.5:
        return LanguageGuess(True, script, f"instruction {script:.0%} non-Latin script")
    words = [w.lower() for w in _WORD.findall(text)]
    english = sum(1 for w in words if w in ENGLISH)
    other = sum(1 for w in words if w in _OTHER)
    accented = sum(1 for w in words if any(ord(c) > 127 for c in w))
    evidence = english + other + accented
    if evidence < 2:
        return LanguageGuess(False, 0.0, "too little text to tell its language")
    share = (other + accented) / evidence
    foreign = share >= 0.6 and other + accented >= 2
    reason = f"instruction function words: {other + accented} foreign, {english} English"
    return LanguageGuess(foreign, round(share, 3), reason)


def _looks_like_prose(line: str) -> bool:
    letters = sum(c.isalpha() or c.isspace() for c in line)
    return len(line.split()) >= 3 and letters / max(len(line), 1) > 0.8


def ask_text(prompt: str) -> str:
    """The instruction, plus the last line when it is a question or request of its own.

    What a request wants is said there; pasted material in between would dominate an
    embedding of the whole prompt.
    """
    head = instruction_text(prompt)
    lines = [ln.strip() for ln in prompt.strip().splitlines() if ln.strip()]
    if lines and lines[-1] not in head and _looks_like_prose(lines[-1]):
        return f"{head} {lines[-1]}"
    return head
