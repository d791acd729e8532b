"""Which language a request is written in, judged on its instruction, not its pasted material."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

ENGLISH = frozenset(
    "the a an and or of to in on for with this that these those is are was were be it its what "
    "which who how why when where please can you me my our we us your i do does did not no "
    "from by as at if then than into about any all each every only just give tell write explain "
    "show list make find check help need should would could will".split()
)
#: Frequent function words of Latin-script languages (and a few request verbs).
OTHER_LATIN = {
    "es": "el la los las un una unos del al que en por para con es son este esta estos como "
    "qué cuál por favor dime analiza explica resume escribe traduce hay sus su".split(),
    "fr": "le la les un une des du de et est sont ce cette ces pour avec dans que qui quels "
    "quelles peux-tu merci réponds résume explique sur pas".split(),
    "de": "der die das den dem ein eine und ist sind nicht bitte mit für von zu auf was wie "
    "diese dieser dieses kannst erstelle erkläre sag mir ob".split(),
    "pt": "o os as um uma do da dos das e é são para com em que por você pode este esta "
    "isso clique sua seu".split(),
    "it": "il lo gli le un una del della dei e è sono per con che questo questa non vendo "
    "traduci".split(),
    "nl": "de het een en is zijn niet voor met van op wat hoe deze dit kun je".split(),
}
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
    """The part of a prompt that asks: its first non-empty lines up to about 25 words.

    Pasted logs, mail and foreign snippets usually follow the instruction after a colon or
    a line break, and do not decide the request's language.
    """
    words = 0
    kept: list[str] = []
    for line in prompt.strip().splitlines():
        if not line.strip():
            if kept:
                break
            continue
        kept.append(line)
        words += len(line.split())
        if words >= 25 or line.rstrip().endswith(":"):
            break
    return " ".join(kept)


def _script_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    foreign = sum(1 for c in letters if not unicodedata.name(c, "LATIN").startswith("LATIN"))
    return foreign / len(letters)


def guess(prompt: str) -> LanguageGuess:
    """Is the instruction written mainly in another language?"""
    text = instruction_text(prompt)
    script = _script_share(text)
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
