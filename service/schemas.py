"""Request bodies of the HTTP API, field for field as the specification's examples."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.messages import convert_to_messages
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from policies.batch_answers import named_label
from policies.errors import UnsupportedContent
from policies.types import MergeStrategy, NodeStatus, TaskType
from service.tool_schemas import (
    JsonSchemaFormat,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    check_tools,
    checked_json_schema,
)


class GenerationParameters(BaseModel):
    """Generation parameters a request may set, each within its range; vLLM gets them as
    they are. `max_tokens` is also held to the model's own limit once the model is known."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    """A stop string, or up to 4."""
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: Literal[1] | None = None
    """One answer per request (the router merges answers itself)."""
    tools: list[Tool] | None = Field(default=None, min_length=1, max_length=128)
    """Functions the model may call (single calls: fan-outs merge text)."""
    tool_choice: ToolChoice | None = None
    """`none`, `auto`, `required`, or one function by name."""
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    """`json_object`, or `json_schema` with the schema vLLM holds the answer to."""

    @model_validator(mode="after")
    def _tools_agree(self) -> GenerationParameters:
        check_tools(self.tools, self.tool_choice)
        return self


class ChatMessage(BaseModel):
    """One turn of a conversation, OpenAI-shaped."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    """Text, or OpenAI content parts (only `text` parts can be served)."""
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=128)
    """The calls an assistant turn made."""
    tool_call_id: str | None = Field(default=None, max_length=256)
    """The call a tool turn answers."""

    @model_validator(mode="after")
    def _sendable(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only an assistant message makes tool_calls")
        if self.role == "assistant" and self.content is None:
            if not self.tool_calls:
                raise ValueError("an assistant message needs content or tool_calls")
            # OpenAI sends a turn that only calls tools with no content; LangChain needs one.
            self.content = ""
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        try:
            convert_to_messages([self.model_dump(exclude_none=True)])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a message the models can take: {exc}") from None
        return self

    def text(self) -> str:
        """The turn's text; UnsupportedContent for a part that is not text."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        texts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise UnsupportedContent(
                    f"messages: a {part.get('type')!r} content part cannot be served; "
                    "the models take text parts only"
                )
            texts.append(part["text"])
        return "\n".join(texts)


class LlmRequest(BaseModel):
    """The request fields `/process` and `/graph` share, validated the same on both."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prompt: str = Field(min_length=1)
    """The request text; at most `max_prompt_chars` (settings, 100,000 by default)."""
    task_hints: list[str] = Field(default_factory=list, max_length=32)
    """Hints such as `threat` or `code`."""
    requires_parallel: bool = False
    """Run across capable nodes and models."""
    requires_chaining: bool = False
    """Run `operations` in order."""
    operations: list[str] = Field(default_factory=list, max_length=16)
    """Chain steps, e.g. extract, classify, generate."""
    items: list[str] | None = Field(default=None, min_length=1)
    """Batch items to split across nodes; each gets its own answer in `result.items`."""
    labels: (
        list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]]
        | None
    ) = Field(default=None, min_length=2, max_length=32)
    """The label set answers come from (two or more distinct labels): each batch item's,
    checked and retried; without items, consensus over several models' answers counts the
    labels they give."""
    batch_size: int | None = Field(default=None, ge=1)
    """Declared batch size."""
    target: Literal["splunk", "kusto"] | None = None
    """Convert a Sigma rule answer to Splunk SPL or KQL (in `result.validation`)."""
    response_schema: dict[str, Any] | None = None
    """A JSON Schema the answer must fit: asked of the model as its response format, and
    checked (`result.validation`)."""
    repair: bool = True
    """Ask the model once more when its answer fails its check (YARA, Sigma, KQL, SQL, JSON)."""
    models: list[str] = Field(default_factory=list, max_length=16)
    """Models to fan the prompt out to."""
    merge_strategy: MergeStrategy | None = None
    """How several answers become one."""
    priority: int | None = Field(default=None, ge=1, le=5)
    """1 most urgent .. 5 least."""
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)
    """Generation parameters: temperature, max_tokens, top_p, stop, seed, ..."""
    task_type: TaskType | None = None
    """Skip classification and use this task type."""
    model: str | None = None
    """Skip model choice and use this model."""
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    """Most seconds to wait for capacity."""
    cache: bool = False
    """Use the response cache even when temperature is not 0."""
    job_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    """Resubmit a chain under its job_id to resume it from its last finished step."""
    messages: list[ChatMessage] = Field(default_factory=list, max_length=256)
    """A whole conversation, sent to the model instead of the prompt alone (the prompt is
    what is classified)."""

    @field_validator("response_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else checked_json_schema(v)

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, v: list[str] | None) -> list[str] | None:
        # Answers are matched to labels case- and punctuation-blind: each label must read
        # back as itself, or no answer could ever name it.
        seen: dict[str, str] = {}
        for label in v or []:
            named = named_label(label, v or [])
            if named is None:
                raise ValueError(f"{label!r} is not a label an answer can name")
            if named in seen:
                raise ValueError(
                    f"{seen[named]!r} and {label!r} are the same label to an answer, "
                    "which names its label ignoring case and edge punctuation"
                )
            seen[named] = label
        return v

    @model_validator(mode="after")
    def _consistent(self) -> LlmRequest:
        if self.requires_chaining and not self.operations:
            raise ValueError("requires_chaining needs a non-empty operations list")
        if self.response_schema is not None and self.parameters.response_format is not None:
            raise ValueError("give response_schema or parameters.response_format, not both")
        return self

    def graph_fields(self) -> dict[str, Any]:
        """The request as the graph reads it, identity aside: a `response_schema` becomes
        the response format the model is asked for and the answer is checked against."""
        data = self.model_dump(
            exclude={"run_async", "response_schema", "user", "tenant"},
            exclude_none=True,
            mode="json",
        )
        if self.response_schema is not None:
            schema = JsonSchemaFormat(name="answer", schema_=self.response_schema)
            response_format = ResponseFormat(type="json_schema", json_schema=schema)
            data["parameters"]["response_format"] = response_format.model_dump(
                exclude_none=True, mode="json"
            )
        return data

    def graph_input(self, *, user: str, tenant: str, job_id: str) -> dict[str, Any]:
        """The graph's input, with the authenticated user and tenant."""
        return {**self.graph_fields(), "user": user, "tenant": tenant, "job_id": job_id}


class ProcessRequest(LlmRequest):
    """`POST /api/llm/process`."""

    run_async: bool = Field(default=False, alias="async")
    """Answer 202 at once; poll `GET /api/llm/jobs/{job_id}`."""


class GraphInput(LlmRequest):
    """One input of LangServe's `/graph` routes: `/process`'s request, run at once."""

    model_config = ConfigDict(title="LangGraphInput")

    run_async: bool = Field(default=False, alias="async")
    """Ignored: LangServe answers when the run ends."""
    user: str | None = None
    """Ignored: the token's user runs the request."""
    tenant: str | None = None
    """Ignored: the token's tenant owns the request."""


class GpuTelemetry(BaseModel):
    """What a node agent read from NVML."""

    model_config = ConfigDict(extra="forbid")

    gpus: int = Field(ge=0)
    vram_used_gb: float = Field(ge=0)
    vram_total_gb: float = Field(ge=0)
    utilization: float = Field(ge=0, le=1)
    processes: int = Field(ge=0)
    power_w: float = Field(ge=0)
    temperature_c: float
    model_server_vram_gb: float = Field(default=0.0, ge=0)
    """Held by the node's model servers (weights, preallocated KV cache); the update's own
    `vram_used_gb` carries the rest."""


class NodeStatusUpdate(BaseModel):
    """`POST /api/llm/nodes/status` (admin, or a node agent's token)."""

    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(min_length=1)
    vram_used_gb: float | None = Field(default=None, ge=0)
    compute_utilization: float | None = Field(default=None, ge=0, le=1)
    status: NodeStatus | None = None
    gpu: GpuTelemetry | None = None
    """NVML telemetry from the node agent; counts as fresh telemetry."""


class ClassificationRequest(BaseModel):
    """`POST /api/llm/test-classification`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    task_hints: list[str] = Field(default_factory=list, max_length=32)
    task_type: TaskType | None = None
    model: str | None = None


class GraphOutput(BaseModel):
    """What `/graph` answers: a finished run in the specification's JSON shapes."""

    model_config = ConfigDict(title="LangGraphOutput")

    job_id: str | None = None
    """The job's id."""
    status: str | None = None
    """completed (failures answer with an error code instead)."""
    routing: dict[str, Any] | None = None
    """Task type, model, priority, confidence, alternates and reasons."""
    scheduling: dict[str, Any] | None = None
    """Execution mode, node(s) and why, queue wait."""
    result: dict[str, Any] | None = None
    """OpenAI's chat-completion shape, with merge details or the chain's steps."""
    execution_mode: str | None = None
    """single, parallel, chained or queued."""
    chain: list[dict[str, Any]] | None = None
    """Each chain step's operation, task type, model, node and output."""
    user: str | None = None
    """Who ran the job."""
    tenant: str | None = None
    """Whose job it is."""
