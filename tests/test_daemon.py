"""The daemon: lifecycle, auto-start, warm providers, crash and stale-socket recovery, safety."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from llmtools.daemon import protocol
from llmtools.daemon.client import DaemonClient, wait_for_exit
from tests.conftest import command_path
from tests.fakes import Reply, SlowFirstByte
from tests.fakes.fixtures import anthropic_server  # noqa: F401  (fixture)
from tests.fakes.llama_server import smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.helpers import run_process

KEY = "sk-ant-daemon-test"


@pytest.fixture
def with_daemon(monkeypatch, llmtools_home):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    return llmtools_home / "run"


@pytest.fixture
def anthropic_env(anthropic_server, monkeypatch, with_daemon):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    return anthropic_server


def daemon_pid(runtime_dir) -> int:
    return json.loads((runtime_dir / "daemon.pid").read_text())["pid"]


def test_start_status_stop(with_daemon):
    started = run_process("llm", ["daemon", "start"])
    assert started.status == 0, started.stderr
    pid = daemon_pid(with_daemon)
    assert f"pid {pid}" in started.stdout
    socket_path = with_daemon / "daemon.sock"
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(with_daemon.stat().st_mode) == 0o700
    status = run_process("llm", ["daemon", "status", "--json"])
    assert status.status == 0 and json.loads(status.stdout)["pid"] == pid
    again = run_process("llm", ["daemon", "start"])
    assert daemon_pid(with_daemon) == pid and again.status == 0  # one daemon per user
    stopped = run_process("llm", ["daemon", "stop"])
    assert stopped.status == 0 and f"pid {pid}" in stopped.stdout
    assert not socket_path.exists()
    missing = run_process("llm", ["daemon", "status"])
    assert missing.status == 1 and "not running" in missing.stdout


def test_llm_starts_the_daemon_on_demand_and_reuses_the_warm_provider(anthropic_env, with_daemon):
    anthropic_env.script(Reply(text="first"), Reply(text="second"))
    first = run_process("llm", ["-m", "claude-sonnet-4-6", "one"])
    assert (first.status, first.stdout) == (0, "first\n"), first.stderr
    pid = daemon_pid(with_daemon)
    second = run_process("llm", ["-m", "claude-sonnet-4-6", "two"])
    assert (second.status, second.stdout) == (0, "second\n"), second.stderr
    status = DaemonClient(with_daemon).call("status")
    assert status["pid"] == pid and status["warm_models"] == ["claude-sonnet-4-6"]
    # One warm client: both requests went over the same kept-alive connection.
    assert anthropic_env.requests[0].client_port == anthropic_env.requests[1].client_port


def test_llm_through_the_daemon_imports_no_sdk(anthropic_env, with_daemon):
    anthropic_env.script(Reply(text="warm"), Reply(text="warm again"))
    assert run_process("llm", ["daemon", "start"]).status == 0
    probe = ("import sys; sys.argv = ['llm', '-m', 'claude-sonnet-4-6', 'hi']\n"
             "from llmtools.cli.llm import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "print('HEAVY', [m for m in ('anthropic', 'openai', 'httpx') if m in sys.modules],"
             " code, file=sys.stderr)")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert completed.stdout == "warm\n"
    assert "HEAVY [] 0" in completed.stderr, completed.stderr


def test_killing_the_daemon_mid_request_is_a_clear_error_and_the_next_command_recovers(
        anthropic_env, with_daemon):
    anthropic_env.script(SlowFirstByte(), Reply(text="fresh daemon answers"))
    process = subprocess.Popen([command_path("llm"), "-m", "claude-sonnet-4-6", "q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    anthropic_env.wait_for_requests(1, timeout=30)  # the daemon is now waiting on the model
    old_pid = daemon_pid(with_daemon)
    os.kill(old_pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 69
    assert "daemon went away" in stderr and len(stderr.strip().splitlines()) == 1
    assert (with_daemon / "daemon.sock").exists()  # the dead daemon's socket is left behind
    after = run_process("llm", ["-m", "claude-sonnet-4-6", "again"])
    assert (after.status, after.stdout) == (0, "fresh daemon answers\n"), after.stderr
    assert daemon_pid(with_daemon) != old_pid


def test_a_stale_socket_file_is_replaced(with_daemon):
    with_daemon.mkdir(mode=0o700, parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(with_daemon / "daemon.sock"))  # bound, never listening: what a killed daemon leaves
    stale.close()
    client = DaemonClient(with_daemon)
    assert not client.is_running()
    assert client.start() is None
    assert client.is_running()


def test_concurrent_starters_start_one_daemon(with_daemon):
    processes = [subprocess.Popen([command_path("llm"), "daemon", "start"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, outputs
    pids = {line.split("pid ")[1].split(",")[0] for out, _ in outputs for line in out.splitlines()}
    assert len(pids) == 1


def _connect_as(uid: int, socket_path: str) -> dict:
    """Fork, drop to `uid`, connect and ask for status; return the daemon's first reply."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            os.close(read_end)
            os.setgid(uid)
            os.setuid(uid)
            connection = socket.socket(socket.AF_UNIX)
            connection.settimeout(20)
            connection.connect(socket_path)
            try:
                connection.sendall(protocol.encode(protocol.request("status")))
            except BrokenPipeError:
                pass  # the daemon may refuse and hang up before reading: its reply is still there
            os.write(write_end, connection.makefile("rb").readline())
        except BaseException as problem:
            os.write(write_end, json.dumps({"child_error": repr(problem)}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reply:
        data = reply.read()
    os.waitpid(child, 0)
    return json.loads(data)


def test_another_users_connection_is_refused(monkeypatch, tmp_path_factory):
    # A home that uid 65534 can traverse, so only the daemon's own peer check can stop it.
    import tempfile

    home = tempfile.mkdtemp(prefix="llmtools-peer-")
    try:
        os.chmod(home, 0o711)
        monkeypatch.setenv("LLMTOOLS_HOME", home)
        monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
        runtime = os.path.join(home, "run")
        client = DaemonClient()
        assert client.start() is None
        os.chmod(runtime, 0o711)
        os.chmod(os.path.join(runtime, "daemon.sock"), 0o666)
        reply = _connect_as(65534, os.path.join(runtime, "daemon.sock"))
        assert reply.get("event") == "error" and reply.get("kind") == "PermissionDenied", reply
        assert client.call("ping")["pid"]  # still serving its owner
    finally:
        client.stop()
        import shutil

        shutil.rmtree(home, ignore_errors=True)


def test_unknown_command_and_crash_come_back_as_data(with_daemon):
    client = DaemonClient(with_daemon)
    assert client.start() is None
    [unknown] = list(client.request("no_such_command"))
    assert unknown["event"] == "error" and "unrecognized command" in unknown["message"]
    [crash] = list(client.request("chat", spec={"bogus": 1}, request={}))
    assert crash["kind"] == "DaemonCrash" and "Traceback" in crash["traceback"]
    assert client.call("ping")["pid"]  # a crash in one request does not stop the daemon


def test_not_running_is_an_error_event_not_an_exception(with_daemon):
    [event] = list(DaemonClient(with_daemon).request("ping"))
    assert event["event"] == "error" and event["status"] == 69


def test_idle_daemon_exits_by_itself(with_daemon, monkeypatch):
    monkeypatch.setenv("LLMTOOLS_DAEMON_IDLE_TIMEOUT", "0.5")
    client = DaemonClient(with_daemon)
    assert client.start() is None
    pid = daemon_pid(with_daemon)
    assert wait_for_exit(pid, timeout=20)
    assert not (with_daemon / "daemon.sock").exists()


def test_protocol_rejects_garbage():
    import io

    with pytest.raises(protocol.ProtocolError):
        protocol.receive(io.BytesIO(b"[1, 2]\n"))
    with pytest.raises(protocol.ProtocolError):
        protocol.receive(io.BytesIO(b'{"event": "te'))
    assert protocol.receive(io.BytesIO(b"")) is None


@pytest.fixture
def site():
    from tests.pages import LocalSite
    from tests.pdfs import TextPage, write_pdf

    server = LocalSite(pdf=write_pdf([TextPage(["A warm browser page."])])).start()
    yield server
    server.stop()


def test_llm_fetch_uses_the_daemons_warm_browser(with_daemon, site, tmp_path):
    cookies = tmp_path / "cookies.txt"
    from tests.pages import cookies_txt

    cookies.write_text(cookies_txt())
    first = run_process("llm-fetch", [site.url("/scripted")])
    assert first.status == 0, first.stderr
    [page] = first.stack()
    assert page["meta"]["renderer"] == "chromium" and page["meta"]["source"] == site.url("/scripted")
    status = DaemonClient(with_daemon).call("status")
    assert status["browser"] is True
    # A second call, with a 404 beside a page that needs the cookies file: per-URL results.
    second = run_process("llm-fetch", ["--cookies", str(cookies), site.url("/members"), site.url("/nope")])
    assert second.status == 1
    assert [m["meta"]["source"] for m in second.stack()] == [site.url("/members")]
    assert "404" in second.stderr and site.url("/nope") in second.stderr
    assert DaemonClient(with_daemon).call("status")["pid"] == status["pid"]


def test_llm_path_url_goes_through_the_daemon(with_daemon, site):
    result = run_process("llm", ["-m", "echo", "-S", "-p", site.url("/article"), "q"])
    assert result.status == 0, result.stderr
    page = result.stack()[0]
    assert page["meta"]["source"] == site.url("/article") and "Tidal Gardens" in page["content"]
    assert DaemonClient(with_daemon).call("status")["browser"] is True


def test_twenty_concurrent_clients_on_their_own_runtime_threads(with_daemon):
    import concurrent.futures

    from llmtools.daemon.remote import DaemonRuntimes

    assert DaemonClient(with_daemon).start() is None

    def work(index: int) -> tuple[str, str]:
        runtimes = DaemonRuntimes(DaemonClient(with_daemon))  # a client (connection) of its own
        thread = f"t{index}"
        first = runtimes.execute(thread, f"secret = {index} * 7\nimport os\npid = os.getpid()",
                                 timeout=60)
        assert first["ok"], first["error"]
        value = runtimes.evaluate(thread, "(secret, pid == os.getpid())", timeout=60)
        return thread, value["value"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = dict(pool.map(work, range(20)))
    assert results == {f"t{i}": f"({i * 7}, True)" for i in range(20)}
    threads = DaemonClient(with_daemon).call("runtime_threads")
    assert len({t["pid"] for t in threads}) == 20  # one worker process per thread


def test_a_client_hanging_up_mid_block_interrupts_it_and_keeps_the_thread(with_daemon):
    from llmtools.daemon.remote import DaemonRuntimes

    client = DaemonClient(with_daemon)
    assert client.start() is None
    runtimes = DaemonRuntimes(client)
    assert runtimes.execute("keep", "kept = 'still here'", timeout=30)["ok"]
    connection = client._connect()
    connection.write(protocol.encode(protocol.request(
        "runtime_execute", thread="keep", code="import time\nwhile True: time.sleep(0.01)",
        timeout=600)))

    def busy() -> bool:
        return any(t["id"] == "keep" and t["busy"] for t in client.call("runtime_threads"))

    deadline = time.monotonic() + 30
    while not busy():  # wait for the block to be running
        assert time.monotonic() < deadline
    connection.close()  # what Ctrl-C in llm-exec does to the request
    while busy():
        assert time.monotonic() < deadline, "the block was not interrupted"
    assert runtimes.evaluate("keep", "kept", timeout=30)["value"] == "still here"


def test_a_daemon_running_other_code_is_replaced(with_daemon):
    client = DaemonClient(with_daemon)
    assert client.start() is None
    old_pid = daemon_pid(with_daemon)
    recorded = json.loads((with_daemon / "daemon.pid").read_text())
    recorded["root"] = "/somewhere/else/llmtools"  # as if started from another checkout
    (with_daemon / "daemon.pid").write_text(json.dumps(recorded))
    from llmtools import services

    assert services.runtimes()[1] is False  # the daemon's runtimes, through a fresh daemon
    assert wait_for_exit(old_pid, timeout=15)
    assert daemon_pid(with_daemon) != old_pid


def test_llm_exec_calls_the_model_through_the_daemon(anthropic_env, with_daemon):
    anthropic_env.script(Reply(text="Let me look.\n<helpers>\nanswer = 6 * 7\nanswer\n</helpers>"),
                         Reply(text="It is 42."))
    result = run_process("llm-exec", ["-m", "claude-sonnet-4-6", "--thread", "w", "What is 6*7?"])
    assert result.status == 0, result.stderr
    assert "It is 42." in result.stdout
    fed_back = anthropic_env.requests[1].body["messages"][-1]["content"]
    if isinstance(fed_back, list):  # text blocks, when a cache breakpoint marks the message
        fed_back = "".join(block["text"] for block in fed_back)
    assert "<helpers_result>\n42\n</helpers_result>" in fed_back
    status = DaemonClient(with_daemon).call("status")
    assert status["warm_models"] == ["claude-sonnet-4-6"]
    assert [t["id"] for t in status["runtimes"]] == ["w"]


def test_a_local_model_stays_loaded_in_the_daemon_across_names(smollm2, with_daemon):
    for model in ("local:smollm2", str(smollm2)):  # one file, two names: one loaded copy
        result = run_process("llm", ["-m", model, "--max-tokens", "4", "--temperature", "0", "hi"])
        assert result.status == 0, result.stderr
    status = DaemonClient(with_daemon).call("status")
    assert len(status["warm_models"]) == 1 and status["requests_served"] >= 2
