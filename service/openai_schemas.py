"""`POST /v1/chat/completions`: OpenAI's chat-completion request, as far as the router serves
it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.schemas import ChatMessage
from service.tool_schemas import ResponseFormat, Tool, ToolChoice, check_tools


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    """End the stream with a chunk that carries the usage."""


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    """`auto`, a task type or a model."""
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """OpenAI's newer name for `max_tokens`."""
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: Literal[1] | None = None
    """One answer per request."""
    tools: list[Tool] | None = Field(default=None, min_length=1, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = Field(default=None, max_length=256)
    """The caller's own end-user id; identity comes from the token all the same."""

    @model_validator(mode="after")
    def _tools_agree(self) -> ChatCompletionRequest:
        check_tools(self.tools, self.tool_choice)
        return self

    def parameters(self) -> dict[str, Any]:
        """What goes to the model besides the conversation, as OpenAI names it."""
        params = self.model_dump(
            include={
                "temperature",
                "top_p",
                "max_tokens",
                "stop",
                "seed",
                "presence_penalty",
                "frequency_penalty",
                "tools",
                "tool_choice",
                "parallel_tool_calls",
                "response_format",
            },
            exclude_none=True,
            by_alias=True,
        )
        if self.max_completion_tokens is not None:
            params["max_tokens"] = self.max_completion_tokens
        return params
