"""The daemon handshake travels with the request: one round trip per model call, and a
daemon running other code refuses the request before doing anything."""

from __future__ import annotations

import json
import socket

import pytest

from llmtools.daemon import protocol
from llmtools.daemon.client import DaemonClient, wait_for_exit
from tests.fakes import Reply
from tests.fakes.fixtures import anthropic_server  # noqa: F401  (fixture)
from tests.helpers import run_process


@pytest.fixture
def runtime_dir(monkeypatch, llmtools_home):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    return llmtools_home / "run"


def daemon_pid(runtime_dir) -> int:
    return json.loads((runtime_dir / "daemon.pid").read_text())["pid"]


def test_a_model_call_through_the_warm_daemon_is_one_request(anthropic_server, monkeypatch,  # noqa: F811
                                                             runtime_dir):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    anthropic_server.script(Reply(text="warm"), Reply(text="again"))
    assert run_process("llm", ["-m", "claude-sonnet-4-6", "start it"]).stdout == "warm\n"
    client = DaemonClient(runtime_dir)
    before = client.call("status")["requests_served"]
    answered = run_process("llm", ["-m", "claude-sonnet-4-6", "hi"])
    assert (answered.status, answered.stdout) == (0, "again\n"), answered.stderr
    # This status request and the model call: no ping or hello before the call.
    assert client.call("status")["requests_served"] == before + 2


def send_raw(runtime_dir, message: dict) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(str(runtime_dir / protocol.SOCKET_NAME))
        with connection.makefile("rwb") as stream:
            protocol.send(stream, message)
            events = []
            while (event := protocol.receive(stream)) is not None:
                events.append(event)
            return events


def test_a_request_from_other_code_is_refused_before_any_work(runtime_dir):
    client = DaemonClient(runtime_dir)
    assert client.start() is None
    pid = daemon_pid(runtime_dir)
    other = {**protocol.request("stop"), "code": {"version": "0.0.1", "root": "/another/checkout/llmtools"}}
    [refused] = send_raw(runtime_dir, other)
    assert refused["event"] == "error" and refused["kind"] == protocol.OTHER_CODE and refused["status"] == 69
    assert client.call("ping")["pid"] == pid  # the stop was not carried out
    from llmtools import __version__

    ours = {**protocol.request("ping"), "code": protocol.code_identity(__version__)}
    accepted, end = send_raw(runtime_dir, ours)
    assert accepted == {"event": protocol.ACCEPTED} and end["result"]["pid"] == pid


def test_a_client_never_talks_to_a_daemon_running_other_code(runtime_dir, monkeypatch):
    client = DaemonClient(runtime_dir)
    assert client.start() is None
    old_pid = daemon_pid(runtime_dir)
    # This client now believes it runs code from elsewhere (its pid-file check agrees with
    # the daemon's own: only the daemon's check can catch it).
    monkeypatch.setattr(protocol, "code_identity", lambda version: {"version": version, "root": "/elsewhere"})
    events = list(client.request("ping", autostart=True, same_code=True))
    assert wait_for_exit(old_pid, timeout=15)  # replaced...
    new_pid = daemon_pid(runtime_dir)
    assert new_pid != old_pid
    # ...by a daemon of the checkout's code, which refuses this client too: no answer, an
    # error that says the request was not carried out (so the caller works in-process).
    assert [(event["event"], event.get("kind"), event.get("unserved")) for event in events] == [
        ("error", protocol.OTHER_CODE, True)]


def test_a_call_falls_back_in_process_when_the_daemon_cannot_start(anthropic_server, monkeypatch,  # noqa: F811
                                                                   runtime_dir):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    (runtime_dir / protocol.START_LOCK_NAME).mkdir()  # the start lock cannot be opened
    anthropic_server.script(Reply(text="answered here"))
    result = run_process("llm", ["-m", "claude-sonnet-4-6", "q"])
    assert (result.status, result.stdout) == (0, "answered here\n"), result.stderr
    assert "working without it" in result.stderr
