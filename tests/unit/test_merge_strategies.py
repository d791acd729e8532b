"""Each merge strategy on a case where it changes the answer."""

from __future__ import annotations

import pytest

from policies.merge import Candidate, Expectation, expectation_for, local_strategy
from policies.merge.best_quality import quality_score
from policies.merge.ensemble import ensemble_fallback, ensemble_prompt
from policies.types import MergeStrategy
from tests.fakes.rules import BROKEN_YARA, YARA

NONE = Expectation()

# Two weak votes for "benign" against one confident "malicious".
SPLIT = [
    Candidate("a", "Benign", "m1", 0.30),
    Candidate("b", "benign.", "m2", 0.35),
    Candidate("c", "Malicious", "m3", 0.95),
]


def test_consensus_follows_the_majority() -> None:
    out = local_strategy("consensus")(SPLIT, NONE)
    assert out.answer == "benign."
    assert out.used == [0, 1]
    assert "2 of 3" in out.reason


def test_consensus_tie_is_broken_by_confidence() -> None:
    cands = [Candidate("a", "low", "m1", 0.4), Candidate("b", "high", "m2", 0.9)]
    out = local_strategy(MergeStrategy.CONSENSUS)(cands, NONE)
    assert out.answer == "high"
    assert "tie" in out.reason


def test_weighted_follows_confidence_mass_not_headcount() -> None:
    out = local_strategy("weighted")(SPLIT, NONE)
    assert out.answer == "Malicious"
    assert out.used == [2]


def test_concatenate_keeps_every_answer_labelled_in_order() -> None:
    out = local_strategy("concatenate")(SPLIT, NONE)
    assert out.answer.index("### a") < out.answer.index("### b") < out.answer.index("### c")
    assert out.used == [0, 1, 2]


def test_best_quality_prefers_valid_json_over_confidence_when_json_asked() -> None:
    cands = [
        Candidate("prose", "The IOCs are 1.2.3.4 and evil.com " * 5, "m1", 0.99, "stop"),
        Candidate(
            "json", '```json\n{"ips": ["1.2.3.4"], "domains": ["evil.com"]}\n```', "m2", 0.4, "stop"
        ),
    ]
    expect = expectation_for("Extract the IOCs as JSON")
    assert expect.json
    out = local_strategy("best_quality")(cands, expect)
    assert out.used == [1]
    assert out.scores[1] > out.scores[0]


def test_best_quality_penalises_truncation() -> None:
    long = "word " * 60
    done = Candidate("done", long, "m1", 0.5, "stop")
    cut = Candidate("cut", long, "m2", 0.5, "length")
    assert quality_score(done, NONE) - quality_score(cut, NONE) == pytest.approx(0.3)
    assert local_strategy("best_quality")([cut, done], NONE).used == [1]


def test_best_quality_wants_a_fenced_block_for_code() -> None:
    expect = expectation_for("Write a YARA rule for this sample")
    assert expect.code
    prose = Candidate("prose", "You could match the string evil " * 10, "m1", 0.9, "stop")
    code = Candidate(
        "code", '```yara\nrule evil { strings: $a = "evil" condition: $a }\n```', "m2", 0.5, "stop"
    )
    assert local_strategy("best_quality")([prose, code], expect).used == [1]


def test_ensemble_fallback_is_concatenation_with_a_note() -> None:
    out = ensemble_fallback(SPLIT, NONE, "backend_unavailable: down")
    assert out.strategy is MergeStrategy.ENSEMBLE
    assert "### c" in out.answer
    assert out.notes and "fell back to concatenate" in out.notes[0]


def test_ensemble_prompt_carries_question_and_all_answers() -> None:
    text = ensemble_prompt("Is it bad?", SPLIT)
    assert "Is it bad?" in text and text.count("<answer ") == 3


def test_unknown_strategy_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="valid: consensus, weighted, concatenate"):
        local_strategy("majority")


def test_ensemble_is_not_a_local_strategy() -> None:
    with pytest.raises(ValueError, match="needs a model call"):
        local_strategy("ensemble")


def test_nothing_to_merge_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to merge"):
        local_strategy("consensus")([], NONE)


def test_best_quality_picks_the_yara_rule_that_compiles_over_a_longer_surer_broken_one() -> None:
    good = YARA
    broken = BROKEN_YARA + "\n// " + "note " * 40
    cands = [
        Candidate("broken", f"```yara\n{broken}\n```", "m1", 0.99, "stop"),
        Candidate("good", f"```yara\n{good}\n```", "m2", 0.40, "stop"),
    ]
    expect = expectation_for("Write a YARA rule for the dropper.")
    outcome = local_strategy(MergeStrategy.BEST_QUALITY)(cands, expect)
    assert outcome.used == [1] and good in outcome.answer
    assert quality_score(cands[0], expect) < quality_score(cands[1], expect)


def test_consensus_over_a_label_set_counts_labels_not_wording() -> None:
    cands = [
        Candidate("a", "Malicious - encoded PowerShell download", "m1", 0.5),
        Candidate("b", "malicious.", "m2", 0.5),
        Candidate("c", "Benign", "m3", 0.9),
    ]
    by_label = local_strategy(MergeStrategy.CONSENSUS)(
        cands, Expectation(labels=("benign", "malicious"))
    )
    assert by_label.used == [0, 1] and "2 of 3" in by_label.reason
    by_text = local_strategy(MergeStrategy.CONSENSUS)(cands, Expectation())
    assert by_text.used == [2]  # three different texts: the most confident wins
