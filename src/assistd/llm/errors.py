"""Errors of the upstream model client. Every failure of :meth:`LLMClient.stream` is one of these::

    UpstreamError                    .code .message .retryable .status .upstream .partial
    ├── UpstreamConnectionError      no connection: refused, DNS, TLS, connect timeout     server_error, retryable
    ├── UpstreamTimeoutError         no first chunk in time (see LLMClient)                server_error, not retried
    ├── UpstreamStatusError          the upstream answered an HTTP error status (.status)
    │   ├── UpstreamRateLimitError   429, or a Retry-After longer than we wait              rate_limit_exceeded, retryable
    │   ├── UpstreamServerError      5xx, 408                                              server_error, retryable
    │   └── UpstreamRequestError     any other 4xx (bad key, unknown model, bad request)   server_error, not retryable
    │       └── UpstreamContextLengthError   the prompt does not fit the model             invalid_prompt
    └── UpstreamStreamError          a 200 stream that went wrong: dropped, stalled,       server_error; retryable
                                     an error event (its code), a malformed chunk          except malformed chunks

``code`` is what the executor puts in ``run.last_error.code`` and ``message`` its text: it names
the upstream (base URL and model) and the reason. ``retryable`` says whether the failure is
transient, so that sending the same request again later may succeed. When the client raises,
it has already spent its own retries, so the executor should fail the run rather than retry it.
``partial`` is true when events had already been yielded before the failure: the stream broke
mid-way. Such a failure is never retried (``retryable`` is then False), because sending the
request again would repeat output the caller has already seen.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ErrorCode",
    "UpstreamConnectionError",
    "UpstreamContextLengthError",
    "UpstreamError",
    "UpstreamRateLimitError",
    "UpstreamRequestError",
    "UpstreamServerError",
    "UpstreamStatusError",
    "UpstreamStreamError",
    "UpstreamTimeoutError",
]

ErrorCode = Literal["rate_limit_exceeded", "server_error", "invalid_prompt"]


class UpstreamError(Exception):
    """A failed upstream call: ``code`` for ``last_error``, ``message`` saying which upstream and why."""

    code: ErrorCode = "server_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        upstream: str = "",
        status: int | None = None,
        code: ErrorCode | None = None,
        retryable: bool | None = None,
        partial: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream = upstream
        self.status = status
        self.partial = partial
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def with_message(self, message: str) -> UpstreamError:
        """This error with another message (same class and attributes); the old one is its cause."""
        self.message = message
        self.args = (message,)
        return self

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class UpstreamConnectionError(UpstreamError):
    retryable = True


class UpstreamTimeoutError(UpstreamError):
    # Not retried: an upstream that took the whole time-out to say nothing would most likely do
    # it again, and three full waits are how a run used to hang for 15 minutes.
    retryable = False


class UpstreamStatusError(UpstreamError):
    retry_after: float | None = None  # seconds the upstream asked us to wait (Retry-After), if it did


class UpstreamRateLimitError(UpstreamStatusError):
    code: ErrorCode = "rate_limit_exceeded"
    retryable = True


class UpstreamServerError(UpstreamStatusError):
    retryable = True


class UpstreamRequestError(UpstreamStatusError):
    retryable = False


class UpstreamContextLengthError(UpstreamRequestError):
    code: ErrorCode = "invalid_prompt"


class UpstreamStreamError(UpstreamError):
    retryable = True
