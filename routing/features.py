"""The learned layer's input: a sentence embedding, hashed words of the ask, rule and hint votes."""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np
import numpy.typing as npt

from policies.types import TaskType

Array = npt.NDArray[np.float32]
RULE_SCALE = 0.25
HINT_SCALE = 0.5
#: The words' weight against the embedding's; chosen by cross-validation on the training set.
WORD_SCALE = 2.0
HASH_DIM = 4096
_WORD = re.compile(r"[a-z][a-z0-9&'+-]*")


def hashed_words(text: str) -> Array:
    """Unit-length bag of the text's lower-cased words and word pairs, hashed into HASH_DIM."""
    words = _WORD.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    vec = np.zeros(HASH_DIM, dtype=np.float32)
    for gram in grams:
        vec[zlib.crc32(gram.encode()) % HASH_DIM] = 1.0
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


def feature_vector(
    embedding: Array,
    ask: str,
    rule_scores: dict[TaskType, float],
    hint_scores: dict[TaskType, float],
    pasted_foreign: float,
) -> Array:
    """[embedding, hashed words of the ask, rule votes, hint votes, foreignness of the paste]."""
    rules = np.asarray([rule_scores[t] for t in TaskType], dtype=np.float32) * RULE_SCALE
    hints = np.asarray([hint_scores[t] for t in TaskType], dtype=np.float32) * HINT_SCALE
    extra = np.asarray([pasted_foreign], dtype=np.float32)
    words = hashed_words(ask) * WORD_SCALE
    return np.concatenate([embedding, words, rules, hints, extra]).astype(np.float32)
