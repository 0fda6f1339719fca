"""pytest fixtures for the loopback fakes; import them into a test module by name:

    from tests.fakes.fixtures import anthropic_server, openai_server  # noqa: F401

Each fixture starts a fresh server for the test and stops it at teardown, releasing any
request still held by `SlowFirstByte`, and fails the test if the fake itself crashed
while answering (a bug in the fake must not pass for a client failure).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import AnthropicFakeServer
from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_server import OpenAIFakeServer


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicFakeServer]:
    with AnthropicFakeServer() as server:
        yield server
    _no_handler_errors(server)


@pytest.fixture
def openai_server() -> Iterator[OpenAIFakeServer]:
    with OpenAIFakeServer() as server:
        yield server
    _no_handler_errors(server)


def _no_handler_errors(server: LoopbackServer) -> None:
    if server.handler_errors:
        raise AssertionError(f"the fake server failed: {server.handler_errors[0]!r}")
