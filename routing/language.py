"""Which language a request is written in, judged on its instruction, not its pasted material."""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.classification import foreign_script_share

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "this",
        "that",
        "these",
        "those",
        "is",
        "are",
        "was",
        "were",
        "be",
        "it",
        "its",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "please",
        "can",
        "you",
        "me",
        "my",
        "our",
        "we",
        "us",
        "your",
        "i",
        "do",
        "does",
        "did",
        "not",
        "no",
        "from",
        "by",
        "as",
        "at",
        "if",
        "then",
        "than",
        "into",
        "about",
        "any",
        "all",
        "each",
        "every",
        "only",
        "just",
        "give",
        "tell",
        "write",
        "explain",
        "show",
        "list",
        "make",
        "find",
        "check",
        "help",
        "need",
        "should",
        "would",
        "could",
        "will",
    ]
)
#: Frequent function words of Latin-script languages (and a few request verbs).
OTHER_LATIN = {
    "es": [
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "unos",
        "unas",
        "del",
        "al",
        "que",
        "en",
        "por",
        "para",
        "con",
        "es",
        "son",
        "este",
        "esta",
        "estos",
        "estas",
        "como",
        "qué",
        "cuál",
        "cómo",
        "dónde",
        "cuándo",
        "por",
        "favor",
        "dime",
        "analiza",
        "explica",
        "resume",
        "escribe",
        "traduce",
        "hay",
        "sus",
        "su",
        "muy",
        "pero",
        "también",
        "se",
        "lo",
        "le",
        "nos",
        "mi",
        "tu",
        "usted",
        "puedes",
        "necesito",
        "hola",
        "ayuda",
        "sobre",
        "entre",
        "desde",
        "hasta",
    ],
    "fr": [
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "du",
        "de",
        "et",
        "est",
        "sont",
        "ce",
        "cette",
        "ces",
        "pour",
        "avec",
        "dans",
        "que",
        "qui",
        "quels",
        "quelles",
        "quel",
        "quelle",
        "peux-tu",
        "pouvez-vous",
        "merci",
        "réponds",
        "résume",
        "explique",
        "sur",
        "pas",
        "ne",
        "nous",
        "vous",
        "je",
        "il",
        "elle",
        "au",
        "aux",
        "mais",
        "ou",
        "donc",
        "car",
        "bonjour",
        "analysez",
        "indiquez",
        "dites-moi",
    ],
    "de": [
        "der",
        "die",
        "das",
        "den",
        "dem",
        "des",
        "ein",
        "eine",
        "einen",
        "und",
        "ist",
        "sind",
        "nicht",
        "bitte",
        "mit",
        "für",
        "von",
        "zu",
        "auf",
        "was",
        "wie",
        "warum",
        "wo",
        "diese",
        "dieser",
        "dieses",
        "kannst",
        "können",
        "erstelle",
        "erkläre",
        "sag",
        "mir",
        "ob",
        "ich",
        "wir",
        "sie",
        "es",
        "auch",
        "aber",
        "oder",
        "noch",
        "nach",
        "bei",
        "unser",
        "unsere",
    ],
    "pt": [
        "o",
        "os",
        "as",
        "um",
        "uma",
        "do",
        "da",
        "dos",
        "das",
        "e",
        "é",
        "são",
        "para",
        "com",
        "em",
        "que",
        "por",
        "você",
        "pode",
        "este",
        "esta",
        "isso",
        "clique",
        "sua",
        "seu",
        "não",
        "como",
        "qual",
        "quais",
        "nos",
        "nas",
        "ao",
        "pelo",
        "pela",
        "olá",
        "ajuda",
        "preciso",
        "explique",
        "analise",
        "resuma",
    ],
    "it": [
        "il",
        "lo",
        "gli",
        "le",
        "un",
        "una",
        "del",
        "della",
        "dei",
        "delle",
        "di",
        "da",
        "in",
        "e",
        "è",
        "sono",
        "per",
        "con",
        "che",
        "questo",
        "questa",
        "non",
        "come",
        "cosa",
        "perché",
        "puoi",
        "spiega",
        "analizza",
        "nel",
        "nella",
        "alla",
        "al",
        "si",
        "mi",
        "ci",
        "ho",
        "abbiamo",
        "vendo",
        "traduci",
    ],
    "nl": [
        "de",
        "het",
        "een",
        "en",
        "is",
        "zijn",
        "niet",
        "voor",
        "met",
        "van",
        "op",
        "wat",
        "hoe",
        "waarom",
        "deze",
        "dit",
        "kun",
        "je",
        "we",
        "ik",
        "ons",
        "onze",
        "naar",
        "bij",
        "maar",
        "ook",
        "graag",
    ],
    "pl": [
        "i",
        "w",
        "z",
        "na",
        "jest",
        "nie",
        "to",
        "czy",
        "jak",
        "co",
        "się",
        "dla",
        "ten",
        "ta",
        "proszę",
        "przez",
        "jaki",
        "jakie",
        "wyjaśnij",
    ],
    "tr": [
        "ve",
        "bir",
        "bu",
        "için",
        "ile",
        "ne",
        "nasıl",
        "değil",
        "mi",
        "lütfen",
        "olan",
        "şu",
        "ama",
        "da",
        "de",
    ],
    "sv": [
        "och",
        "att",
        "det",
        "som",
        "en",
        "är",
        "på",
        "för",
        "med",
        "inte",
        "vad",
        "hur",
        "kan",
        "du",
        "denna",
        "vi",
        "jag",
    ],
    "id": [
        "dan",
        "yang",
        "di",
        "ini",
        "itu",
        "untuk",
        "dengan",
        "tidak",
        "apa",
        "bagaimana",
        "tolong",
        "dari",
        "ke",
        "kami",
    ],
    "ro": ["și", "în", "este", "pentru", "cu", "nu", "ce", "cum", "această", "acest", "vă", "rog"],
    "vi": ["và", "của", "là", "có", "không", "này", "cho", "với", "được", "những", "một", "các"],
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
