"""Errors that reach the client: each has a code, a message and whose fault it is."""

from __future__ import annotations


class RouterError(Exception):
    """A failure with a stable code and the HTTP status that says whose fault it is."""

    code = "router_error"
    http_status = 500

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, object]:
        """The JSON body clients see."""
        body: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "http_status": self.http_status,
        }
        if self.retry_after_s is not None:
            body["retry_after_s"] = round(self.retry_after_s, 3)
        return body


class InvalidRequest(RouterError):
    """The caller asked for something that cannot exist or be done."""

    code = "invalid_request"
    http_status = 422


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


class NoCapableNode(RouterError):
    """No configured node serves the model at all, or every one is offline."""

    code = "no_capable_node"
    http_status = 503


class BackendUnavailable(RouterError):
    """The model server could not be reached or answered with a server error."""

    code = "backend_unavailable"
    http_status = 503


class BackendRejected(RouterError):
    """The model server refused the request (4xx), for example too many tokens."""

    code = "backend_rejected"
    http_status = 502


class BackendTimeout(RouterError):
    """The model server did not answer within the timeout."""

    code = "backend_timeout"
    http_status = 504


def error_from_dict(body: dict[str, object]) -> RouterError:
    """Rebuild a RouterError from its `to_dict` form (a branch's recorded failure)."""
    classes: list[type[RouterError]] = [RouterError]
    index = 0
    while index < len(classes):
        classes.extend(classes[index].__subclasses__())
        index += 1
    by_code = {cls.code: cls for cls in classes}
    cls = by_code.get(str(body.get("code")), RouterError)
    retry = body.get("retry_after_s")
    return cls(
        str(body.get("message", "")),
        retry_after_s=float(retry) if isinstance(retry, int | float) else None,
    )
