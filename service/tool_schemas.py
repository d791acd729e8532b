"""OpenAI's tools, tool calls and response formats: what a request may pass to vLLM, which
serves them (tool calling and guided decoding)."""

from __future__ import annotations

from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: OpenAI's rule for function and schema names.
NAME = r"^[a-zA-Z0-9_-]{1,64}$"


def checked_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema that vLLM's guided decoding can use, or a ValueError that says why not."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    return schema


class FunctionDefinition(BaseModel):
    """A function the model may call."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    description: str | None = Field(default=None, max_length=4096)
    parameters: dict[str, Any] | None = None
    """The arguments, as a JSON Schema."""
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _valid_parameters(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else checked_json_schema(v)


class Tool(BaseModel):
    """One tool offered to the model."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)


class NamedToolChoice(BaseModel):
    """Call this one function."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    """The schema an answer must follow."""

    # `schema` shadows a BaseModel attribute: the field has another name, the wire this one.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    name: str = Field(pattern=NAME)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        return checked_json_schema(v)


class ResponseFormat(BaseModel):
    """`text`, `json_object` (any JSON object) or `json_schema` (one that fits a schema)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is given with type json_schema, and only then")
        return self


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


def check_tools(tools: list[Tool] | None, tool_choice: ToolChoice | None) -> None:
    """ValueError unless the tools have distinct names and `tool_choice` picks among them."""
    names = [t.function.name for t in tools or []]
    if len(set(names)) != len(names):
        raise ValueError("tools: each function name appears once")
    if tool_choice not in (None, "none") and not names:
        raise ValueError("tool_choice needs tools")
    if isinstance(tool_choice, NamedToolChoice) and tool_choice.function.name not in names:
        raise ValueError(f"tool_choice names {tool_choice.function.name!r}, which is not in tools")


class ToolCallFunction(BaseModel):
    """The function an assistant turn called, and its arguments as the model wrote them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    arguments: str
    """JSON text, as OpenAI sends it."""


class ToolCall(BaseModel):
    """One tool call of an earlier assistant turn, sent back with the tool's answer."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: ToolCallFunction
