"""A chunk's answer read back item by item."""

from __future__ import annotations

from policies.batch_answers import ItemAnswer, read_answers


def test_numbered_lines_in_any_common_form_map_to_their_items() -> None:
    text = (
        "Here you go:\n11. benign\n12) malicious\nItem 13: benign\n[14] malicious\n**15.** benign"
    )
    answers = read_answers(text, range(10, 15))
    assert [a.answer for a in answers] == ["benign", "malicious", "benign", "malicious", "benign"]
    assert [a.index for a in answers] == [10, 11, 12, 13, 14]


def test_an_answer_runs_on_until_the_next_number() -> None:
    text = "1. Brute force against ssh.\n   Source is a Tor exit.\n2. Nothing of note."
    first, second = read_answers(text, [0, 1])
    assert first.answer == "Brute force against ssh.\nSource is a Tor exit."
    assert second.answer == "Nothing of note."


def test_skipped_and_empty_items_say_why() -> None:
    answers = read_answers("1. benign\n2.\n4. malicious", range(4))
    assert answers[0] == ItemAnswer(0, "benign")
    assert answers[1].answer is None and answers[1].problem == "garbled: empty answer"
    assert answers[2].answer is None and answers[2].problem is not None
    assert answers[2].problem.startswith("skipped")
    assert answers[3].answer == "malicious"


def test_numbers_outside_the_chunk_are_not_answers() -> None:
    # The model echoed the previous chunk's numbering: those lines belong to no item here.
    answers = read_answers("1. benign\n2. benign\n21. malicious", [20, 21])
    assert answers[0].answer == "malicious" and answers[1].answer is None


def test_labels_are_matched_case_and_punctuation_blind_and_reasons_are_dropped() -> None:
    labels = ["benign", "suspicious", "malicious"]
    text = "1. **Malicious** - encoded PowerShell\n2. benign.\n3. probably fine\n4. SUSPICIOUS"
    answers = read_answers(text, range(4), labels)
    assert [a.answer for a in answers] == ["malicious", "benign", None, "suspicious"]
    assert answers[2].problem is not None and "not one of benign" in answers[2].problem


def test_json_answers_are_read_in_each_common_shape() -> None:
    as_object = read_answers('{"3": "benign", "4": "malicious"}', [2, 3])
    as_records = read_answers(
        '```json\n[{"item": 3, "answer": "benign"}, {"item": 4, "answer": "malicious"}]\n```',
        [2, 3],
    )
    as_list = read_answers('["benign", "malicious"]', [2, 3])
    wrapped = read_answers('{"answers": {"3": "benign", "4": "malicious"}}', [2, 3])
    for answers in (as_object, as_records, as_list, wrapped):
        assert [a.answer for a in answers] == ["benign", "malicious"]


def test_a_retry_asks_about_scattered_items_and_reads_them_back() -> None:
    answers = read_answers("4. benign\n9. malicious", [3, 8])
    assert [(a.index, a.answer) for a in answers] == [(3, "benign"), (8, "malicious")]


def test_json_cut_off_at_a_token_limit_keeps_its_whole_entries() -> None:
    text = '{"answers": [{"item": 1, "label": "benign"}, {"item": 2, "label": "mal\\"icious"}, {"it'
    answers = read_answers(text, range(3), cut_short=True)
    assert [a.answer for a in answers] == ["benign", 'mal"icious', None]
    assert answers[2].problem == "cut short: the answer reached its token limit before item 3"
    assert read_answers('{"answers": [', [0])[0].problem == "skipped: no answer numbered 1"
