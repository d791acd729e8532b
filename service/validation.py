"""Size limits on a request, checked once, before it is admitted or counted."""

from __future__ import annotations

from collections.abc import Sequence

from policies.errors import InvalidRequest
from service.context import ServiceOptions


def check_request(
    options: ServiceOptions,
    prompt: str,
    items: Sequence[str] | None,
    conversation: Sequence[str] = (),
) -> None:
    """InvalidRequest when the prompt is empty, or the prompt, the conversation or the batch
    is over its limit."""
    if not prompt.strip():
        raise InvalidRequest("prompt is empty")
    if len(prompt) > options.max_prompt_chars:
        raise InvalidRequest(
            f"prompt: {len(prompt)} characters, over the limit of {options.max_prompt_chars}"
        )
    chars = sum(map(len, conversation))
    if chars > options.max_prompt_chars:
        raise InvalidRequest(
            f"messages: {chars} characters, over the limit of {options.max_prompt_chars}"
        )
    if items is not None and len(items) > options.max_items:
        raise InvalidRequest(f"items: {len(items)} items, over the limit of {options.max_items}")
