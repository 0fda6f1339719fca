"""Loopback fakes of the provider APIs, for driving the official SDKs in tests.

    from tests.fakes import HttpError, Reply
    from tests.fakes.fixtures import anthropic_server  # noqa: F401  (a pytest fixture)

    def test_retry(anthropic_server):
        anthropic_server.script(HttpError.rate_limited("0.2"), Reply("hello"))
        ...  # point the SDK at anthropic_server.base_url
        assert len(anthropic_server.requests) == 2

Behaviours (one is used per request, in order; a plain `Reply()` once the script is
empty): `Reply`, `HttpError` (with `.rate_limited()`, `.overloaded()`, `.server_error()`,
`.unauthorized()`), `CutMidStream`, `SlowFirstByte`, `ErrorMidStream`.
"""

from tests.fakes.loopback import (
    Behaviour,
    CutMidStream,
    ErrorMidStream,
    HttpError,
    RecordedRequest,
    Reply,
    SlowFirstByte,
    unused_port,
)

__all__ = [
    "Behaviour",
    "CutMidStream",
    "ErrorMidStream",
    "HttpError",
    "RecordedRequest",
    "Reply",
    "SlowFirstByte",
    "unused_port",
]
