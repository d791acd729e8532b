"""Errors that reach the client: each has a code, a message and whose fault it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorInfo:
    """A failure as data: what a failed branch records and a client reads."""

    code: str
    """Stable machine-readable code, e.g. `backend_unavailable`."""
    message: str
    """What went wrong, for a person."""
    http_status: int
    """The status that says whose fault it is."""
    retry_after_s: float | None = None
    """When trying again makes sense, for capacity and rate limits."""


class RouterError(Exception):
    """A failure with a stable code and the HTTP status that says whose fault it is."""

    code = "router_error"
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.headers = headers or {}
        """Sent with the error response, e.g. the rate-limit counters."""

    def info(self) -> ErrorInfo:
        """The failure as data."""
        retry = None if self.retry_after_s is None else round(self.retry_after_s, 3)
        return ErrorInfo(self.code, self.message, self.http_status, retry)


class InvalidRequest(RouterError):
    """The caller asked for something that cannot exist or be done."""

    code = "invalid_request"
    http_status = 422


class UnsupportedContent(InvalidRequest):
    """A message part the router cannot send to its models (an image, audio)."""

    code = "unsupported_content"
    http_status = 400


class ModelNotFound(RouterError):
    """The OpenAI-compatible API was asked for a model name it does not offer."""

    code = "model_not_found"
    http_status = 404


class UnknownModel(InvalidRequest):
    """No model of that name is configured."""

    code = "unknown_model"


class UnknownNode(InvalidRequest):
    """No node of that id is configured."""

    code = "unknown_node"
    http_status = 404


class CapacityTimeout(RouterError):
    """The job waited for GPU capacity past its deadline."""

    code = "capacity_timeout"
    http_status = 503


class QueueFull(RouterError):
    """The wait queue is at its bound; try again later."""

    code = "queue_full"
    http_status = 429


class RateLimited(RouterError):
    """A request or token quota of the user or the tenant is spent for this minute."""

    code = "rate_limited"
    http_status = 429


class LimitsUnavailable(RouterError):
    """The shared rate-limit counters cannot be reached: requests are refused, not let
    through uncounted."""

    code = "limits_unavailable"
    http_status = 503


class StoreUnavailable(RouterError):
    """A store the request needs (the audit trail, chain checkpoints) cannot be reached."""

    code = "store_unavailable"
    http_status = 503


class JobInProgress(RouterError):
    """A job of that id is already running for this tenant."""

    code = "job_in_progress"
    http_status = 409


class NoCapableNode(RouterError):
    """No configured node serves the model at all, or every one is offline."""

    code = "no_capable_node"
    http_status = 503


class BackendUnavailable(RouterError):
    """The model server could not be reached or answered with a server error."""

    code = "backend_unavailable"
    http_status = 503


class BackendRejected(RouterError):
    """The model server refused the request as the caller sent it (400, 413, 422), for
    example a prompt longer than its context; the message is the server's."""

    code = "backend_rejected"
    http_status = 400


class BackendMisconfigured(RouterError):
    """The model server refused the router itself (401, 403, 404): a key or a served model
    name in the cluster config is wrong."""

    code = "backend_misconfigured"
    http_status = 502


class BackendTimeout(RouterError):
    """The model server did not answer within the timeout."""

    code = "backend_timeout"
    http_status = 504


def error_from_info(info: ErrorInfo) -> RouterError:
    """Raise-able again: the RouterError subclass of a recorded failure's code."""
    classes: list[type[RouterError]] = [RouterError]
    index = 0
    while index < len(classes):
        classes.extend(classes[index].__subclasses__())
        index += 1
    by_code = {cls.code: cls for cls in classes}
    cls = by_code.get(info.code, RouterError)
    return cls(info.message, retry_after_s=info.retry_after_s)
