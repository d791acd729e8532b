"""Each item's confidence in its label, from the tokens of a labelled batch answer."""

from __future__ import annotations

import math

import pytest

from policies.item_confidence import TokenLogprob, label_confidences

LABELS = ("benign", "malicious")


def tokens(*pieces: tuple[str, float, dict[str, float]]) -> list[TokenLogprob]:
    return [TokenLogprob(text, logprob, top) for text, logprob, top in pieces]


def answer(*pieces: tuple[str, float, dict[str, float]]) -> tuple[str, list[TokenLogprob]]:
    toks = tokens(*pieces)
    return "".join(t.token for t in toks), toks


HEAD = ('{"answers":[{"item":', 0.0, {})


def test_a_label_chosen_over_the_other_gets_its_share_of_the_two() -> None:
    content, toks = answer(
        HEAD,
        ("7", 0.0, {}),
        (',"label":"', 0.0, {}),
        # 0.6 for benign, 0.2 for malicious, 0.2 for a token that starts no label.
        ("ben", math.log(0.6), {"ben": math.log(0.6), "mal": math.log(0.2), "x": math.log(0.2)}),
        ("ign", math.log(0.9), {}),
        ('"}]}', 0.0, {}),
    )
    # Once "ben" can only become "benign", the later tokens are spelling, not a choice.
    assert label_confidences(content, toks, LABELS) == {7: pytest.approx(0.75)}


def test_alternatives_that_spell_the_same_label_count_for_it() -> None:
    content, toks = answer(
        HEAD,
        ("7", 0.0, {}),
        (',"label":"', 0.0, {}),
        ("benign", math.log(0.5), {"ben": math.log(0.3), "b": math.log(0.1), "mal": math.log(0.1)}),
        ('"}]}', 0.0, {}),
    )
    assert label_confidences(content, toks, LABELS) == {7: pytest.approx(0.9)}


def test_labels_sharing_a_first_token_are_told_apart_where_they_part() -> None:
    content, toks = answer(
        HEAD,
        ("2", 0.0, {}),
        (',"label": "', 0.0, {}),
        ("mal", math.log(0.9), {"ben": math.log(0.1)}),
        ("ware", math.log(0.7), {"icious": math.log(0.3)}),
        ('"}]}', 0.0, {}),
    )
    labels = ("benign", "malicious", "malware")
    assert label_confidences(content, toks, labels) == {2: pytest.approx(0.9 * 0.7)}


def test_a_label_json_escapes_is_read_as_the_label() -> None:
    content, toks = answer(
        HEAD,
        ("4", 0.0, {}),
        (',"label":"', 0.0, {}),
        ('say \\"hi\\""', math.log(0.8), {"no": math.log(0.2)}),
        ("}]}", 0.0, {}),
    )
    assert label_confidences(content, toks, ('say "hi"', "no")) == {4: pytest.approx(0.8)}


def test_a_number_answered_twice_takes_the_last_entry_as_the_answer_does() -> None:
    content, toks = answer(
        HEAD,
        ("1", 0.0, {}),
        (',"label":"benign"},{"item":1,"label":"odd"}]}', 0.0, {}),
    )
    assert label_confidences(content, toks, LABELS) == {}


def test_a_token_that_also_closes_the_key_is_compared_from_the_labels_start() -> None:
    # The label's first token carries the quote before it: alternatives must share it.
    content, toks = answer(
        HEAD,
        ("3", 0.0, {}),
        (',"label":', 0.0, {}),
        ('"mal', math.log(0.5), {'"mal': math.log(0.5), '"ben': math.log(0.5), "}": -1.0}),
        ('icious"}]}', 0.0, {}),
    )
    assert label_confidences(content, toks, LABELS) == {3: pytest.approx(0.5)}


def test_each_item_of_a_chunk_gets_its_own() -> None:
    content, toks = answer(
        HEAD,
        ("1", 0.0, {}),
        (',"label":"', 0.0, {}),
        ("benign", math.log(0.99), {"benign": math.log(0.99), "mal": math.log(0.01)}),
        ('"},{"item":', 0.0, {}),
        ("2", 0.0, {}),
        (',"label":"', 0.0, {}),
        ("malicious", math.log(0.4), {"benign": math.log(0.6), "malicious": math.log(0.4)}),
        ('"}]}', 0.0, {}),
    )
    sure = label_confidences(content, toks, LABELS)
    assert sure == {1: pytest.approx(0.99), 2: pytest.approx(0.4)}


def test_without_alternatives_a_label_is_as_likely_as_its_tokens() -> None:
    content, toks = answer(
        HEAD, ("5", 0.0, {}), (',"label":"', 0.0, {}), ("benign", -0.5, {}), ('"}]}', 0.0, {})
    )
    assert label_confidences(content, toks, LABELS) == {5: pytest.approx(math.exp(-0.5))}


def test_the_end_of_turn_token_after_the_answer_is_no_mismatch() -> None:
    content, toks = answer(
        HEAD, ("5", 0.0, {}), (',"label":"', 0.0, {}), ("benign", -0.5, {}), ('"}]}', 0.0, {})
    )
    ended = [*toks, TokenLogprob("<|im_end|>", 0.0)]
    assert label_confidences(content, ended, LABELS) == {5: pytest.approx(math.exp(-0.5))}


def test_tokens_that_do_not_spell_the_answer_give_nothing_to_read() -> None:
    content, toks = answer(HEAD, ("5", 0.0, {}), (',"label":"benign"}]}', 0.0, {}))
    assert label_confidences(content + " ", toks, LABELS) == {}
    assert label_confidences(content, [], LABELS) == {}
    # A label off the set has no confidence to give.
    odd, odd_tokens = answer(HEAD, ("5", 0.0, {}), (',"label":"odd"}]}', 0.0, {}))
    assert label_confidences(odd, odd_tokens, LABELS) == {}
