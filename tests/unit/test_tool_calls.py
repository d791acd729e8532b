"""Tool calls as OpenAI clients send and receive them."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from pydantic import ValidationError

from cluster.pool import openai_tool_calls
from service.openai_schemas import ChatCompletionRequest

USER = [{"role": "user", "content": "Is 203.0.113.7 malicious?"}]


def test_parsed_and_unparsable_calls_both_come_back_in_openai_shape() -> None:
    message = AIMessage(
        content="",
        tool_calls=[{"id": "a", "name": "lookup_ip", "args": {"ip": "203.0.113.7"}}],
        invalid_tool_calls=[{"id": "b", "name": "block_ip", "args": '{"ip": "203.', "error": "x"}],
    )
    assert openai_tool_calls(message) == [
        {
            "id": "a",
            "type": "function",
            "function": {"name": "lookup_ip", "arguments": '{"ip": "203.0.113.7"}'},
        },
        {
            "id": "b",
            "type": "function",
            "function": {"name": "block_ip", "arguments": '{"ip": "203.'},
        },
    ]


def test_an_assistant_turn_that_only_calls_tools_is_sendable() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "clean"},
            ],
        }
    )
    assert request.messages[1].content == ""


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}] * 2}, "appears once"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "pattern"),
        (
            {
                "response_format": {
                    "type": "json_object",
                    "json_schema": {"name": "x", "schema": {}},
                }
            },
            "only then",
        ),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "only an assistant"),
    ],
)
def test_malformed_tools_and_formats_are_refused(extra: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ChatCompletionRequest.model_validate({"model": "auto", "messages": USER, **extra})
