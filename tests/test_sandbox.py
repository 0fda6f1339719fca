"""What model-written code can and cannot touch: runtimes under bubblewrap, keys, limits.

Most tests drive a RuntimeManager directly with a sandbox policy (as llm-exec sends it);
the flags, the warning of `off` and the refusal without bubblewrap go through llm-exec.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from llmtools.config import resolve_model
from llmtools.runtime import sandbox, worker_processes
from llmtools.runtime.manager import RuntimeManager
from llmtools.runtime.results import helper_context
from tests.fakes.fixtures import openai_server  # noqa: F401  (pytest fixture)
from tests.fakes.loopback import Reply
from tests.helpers import run_command
from tests.pages import LocalSite

pytestmark = pytest.mark.skipif(sandbox.bwrap_problem(sandbox.find_bwrap()) is not None,
                                reason="bubblewrap cannot confine processes here")

OPENAI_KEY = "sk-proj-sandboxtestkey0123456789abcdefghij"


@pytest.fixture
def workspace(tmp_path):
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


@pytest.fixture
def manager(tmp_path):
    runtimes = RuntimeManager(snapshot_dir=tmp_path / "state", interrupt_grace=1.0)
    yield runtimes
    runtimes.close()


def rules(mode: str, cwd: Path, **options) -> dict:
    return sandbox.policy(mode, bwrap=sandbox.find_bwrap(), cwd=str(cwd), **options)


def run(manager, code: str, policy: dict, *, context=None, timeout: float = 30) -> dict:
    return manager.execute("t", code, timeout=timeout, sandbox=policy, context=context)


def failure(result: dict) -> str:
    assert not result["ok"], result
    return f"{result['error']['type']}: {result['error']['message']}"


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    yield server.getsockname()[1]
    server.close()


# --- workspace: what stays out of reach -----------------------------------------------------------


def test_a_file_planted_in_the_home_is_unseen(manager, workspace, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    monkeypatch.setenv("HOME", str(home))
    policy = rules("workspace", workspace)
    assert "FileNotFoundError" in failure(run(manager, f"open({str(home / '.ssh/id_ed25519')!r}).read()", policy))
    shown = run(manager, "import os\nprint(os.path.expanduser('~'))\ntry:\n    print(open('/etc/shadow').read())\n"
                         "except OSError as error:\n    print(type(error).__name__)", policy)
    assert shown["ok"], shown
    assert str(home) not in shown["stdout"] and "root:" not in shown["stdout"]
    off = run(manager, f"print(open({str(home / '.ssh/id_ed25519')!r}).read())", rules("off", workspace))
    assert off["stdout"] == "PRIVATE KEY\n"  # what the sandbox prevents, off allows


def test_run_from_the_home_directory_its_keys_and_our_state_stay_hidden(manager, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / ".ssh" / "known_hosts").write_text("example.com ssh-ed25519 AAAA")
    (home / "notes.txt").write_text("my notes")
    state = home / "llmtools-state"
    (state / "config").mkdir(parents=True)
    (state / "config" / "config.toml").write_text('[providers.openai]\napi_key = "sk-in-config"\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LLMTOOLS_HOME", str(state))
    policy = rules("workspace", home)
    seen = run(manager, "print(open('notes.txt').read())", policy)
    assert seen["ok"] and seen["stdout"] == "my notes\n", seen  # the working directory is shown
    for hidden in (home / ".ssh" / "id_ed25519", state / "config" / "config.toml"):
        assert "FileNotFoundError" in failure(run(manager, f"open({str(hidden)!r}).read()", policy))
    named = rules("workspace", home, allow=[(str(home / ".ssh" / "known_hosts"), False)])
    shown = run(manager, f"print(open({str(home / '.ssh' / 'known_hosts')!r}).read())", named)
    assert shown["ok"] and "example.com" in shown["stdout"], shown  # what the user named itself
    assert "FileNotFoundError" in failure(run(manager, f"open({str(home / '.ssh' / 'id_ed25519')!r})", named))
    assert (home / ".ssh" / "id_ed25519").read_text() == "PRIVATE KEY"


def test_writing_outside_the_working_and_work_directories_fails(manager, workspace, tmp_path):
    policy = rules("workspace", workspace)
    beside = Path.home() / f"llmtools-sandbox-probe-{os.getpid()}"
    assert "Error" in failure(run(manager, f"open({str(beside)!r}, 'w').write('x')", policy))
    assert "Read-only file system" in failure(run(manager, "open('/usr/planted', 'w')", policy))
    assert "Read-only file system" in failure(run(manager, "open('/planted', 'w')", policy))
    # Under /tmp a write lands in the runtime's private /tmp, never in the real one.
    outside = tmp_path / "outside.txt"
    assert run(manager, f"open({str(outside)!r}, 'w').write('x')", policy)["ok"]
    assert not beside.exists() and not outside.exists()
    written = run(manager, "import os\nopen('here.txt', 'w').write('ok')\n"
                           "open(os.path.join(os.environ['HOME'], 'mine.txt'), 'w').write('ok')\n"
                           "open('/tmp/scratch', 'w').write('ok')", policy)
    assert written["ok"], written
    assert (workspace / "here.txt").read_text() == "ok" and not outside.exists()
    assert not Path("/tmp/scratch").exists()  # a private /tmp


def test_read_only_lets_the_code_write_only_its_work_directory(manager, workspace):
    (workspace / "data.txt").write_text("readable")
    policy = rules("read-only", workspace)
    assert "Read-only file system" in failure(run(manager, "open('new.txt', 'w')", policy))
    kept = run(manager, "import os\nprint(open('data.txt').read())\n"
                        "open(os.path.join(os.environ['LLMTOOLS_WORK_DIR'], 'w.txt'), 'w').write('ok')", policy)
    assert kept["ok"] and kept["stdout"] == "readable\n", kept


def test_no_network_not_even_the_hosts_loopback(manager, workspace, listener):
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=5)"
    assert "ConnectionRefusedError" in failure(run(manager, code, rules("workspace", workspace)))


def test_provider_keys_are_nowhere_the_code_can_look(manager, workspace, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-" + "z" * 20)
    spec = resolve_model("gpt-4.1")
    assert spec.api_key == OPENAI_KEY
    context = helper_context(spec, temperature=None, max_tokens=None, thinking=None, log=False,
                             cwd=str(workspace))
    looked = ("import os, json\nfrom llmtools.runtime import helpers\n"
              "print(json.dumps(dict(os.environ)))\nprint(helpers.STATE.context)\n"
              "print(sorted(os.listdir('/proc')))\n"
              "print(os.environ.get('LLMTOOLS_HOME'), os.environ.get('XDG_RUNTIME_DIR'))")
    for mode in ("workspace", "off"):
        result = run(manager, looked, rules(mode, workspace), context=context)
        assert result["ok"], result
        environment = json.loads(result["stdout"].splitlines()[0])
        assert OPENAI_KEY not in result["stdout"] and "zzzzzzzz" not in result["stdout"]
        assert "OPENAI_API_KEY" not in environment and "SOME_SERVICE_TOKEN" not in environment
        assert "'api_key': None" in result["stdout"] and "None None" in result["stdout"]
    # Whatever the code finds, a key-shaped string never reaches the model or the log.
    leaked = run(manager, f"print({OPENAI_KEY[:10]!r} + {OPENAI_KEY[10:]!r})", rules("off", workspace))
    assert OPENAI_KEY not in leaked["stdout"] and "[redacted key]" in leaked["stdout"]


def test_a_detached_process_does_not_outlive_the_runtime(tmp_path, workspace):
    marker = f"llmtools-detached-{os.getpid()}-{time.monotonic_ns()}"
    sleep = shutil.which("sleep")
    code = ("import os, subprocess\n"
            f"subprocess.Popen([{marker!r}, '600'], executable={sleep!r}, start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        os.execv({sleep!r}, [{marker!r}, '600'])\n    os._exit(0)")
    manager = RuntimeManager(snapshot_dir=tmp_path / "state")
    result = run(manager, code, rules("workspace", workspace))
    assert result["ok"], result
    assert _wait_until(lambda: len(_processes_named(marker)) == 2)  # running while the runtime lives
    manager.close()
    assert _wait_until(lambda: _processes_named(marker) == [])


def _wait_until(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _processes_named(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes().startswith(marker.encode()):
                    found.append(int(entry))
            except OSError:
                pass
    return found


# --- helpers reach models and the network for the code ------------------------------------------


def test_download_of_a_loopback_page_works_through_the_helper(manager, workspace):
    site = LocalSite(pdf=b"").start()
    try:
        result = run(manager, f"page = download({site.url('/article')!r})\nprint(page.source)\nlen(page) > 0",
                     rules("workspace", workspace), timeout=60)
    finally:
        site.stop()
    assert result["ok"], result
    assert result["statements"][-1]["value"] == "True"


def test_llm_call_reaches_a_loopback_provider_with_the_key_the_code_never_saw(
        manager, workspace, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.script(Reply("Bonjour."))
    spec = resolve_model("gpt-4.1")
    context = helper_context(spec, temperature=None, max_tokens=None, thinking=None, log=True,
                             cwd=str(workspace))
    result = run(manager, "answer = llm_call('hello', 'translate to French')\nanswer",
                 rules("workspace", workspace), context=context, timeout=60)
    assert result["ok"], result
    assert result["statements"][-1]["value"] == "'Bonjour.'"
    [request] = openai_server.requests
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    from llmtools.logs import open_log

    assert [row["response"] for row in open_log().recent(5)] == ["Bonjour."]


def test_a_spec_the_code_changed_does_not_get_the_callers_key(manager, workspace, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    spec = resolve_model("gpt-4.1")
    context = helper_context(spec, temperature=None, max_tokens=None, thinking=None, log=False,
                             cwd=str(workspace))
    code = ("import dataclasses\nfrom llmtools import services\nfrom llmtools.providers.base import Request\n"
            "from llmtools.runtime.results import context_spec\nfrom llmtools.runtime import helpers\n"
            f"spec = dataclasses.replace(context_spec(helpers.STATE.context), base_url={openai_server.base_url!r})\n"
            "request = Request(messages=[{'role': 'user', 'content': 'hi'}])\n"
            "list(services.chat_stream(spec)(spec, request))")
    openai_server.script(Reply("stolen?"))
    run(manager, code, rules("workspace", workspace), context=context, timeout=60)
    # Re-resolved by name from the configuration: sent where gpt-4.1 is configured, never here.
    assert openai_server.requests == []


# --- what --allow-path and --allow-net open ---------------------------------------------------------


def test_allow_path_opens_exactly_the_named_paths(manager, workspace, tmp_path):
    shared, writable, sibling = tmp_path / "shared", tmp_path / "out", tmp_path / "sibling"
    for directory in (shared, writable, sibling):
        directory.mkdir()
    (shared / "in.txt").write_text("shared text")
    (sibling / "secret.txt").write_text("no")
    policy = rules("workspace", workspace, allow=[(str(shared), False), (str(writable), True)])
    seen = run(manager, f"print(open({str(shared / 'in.txt')!r}).read())\n"
                        f"open({str(writable / 'made.txt')!r}, 'w').write('made')", policy)
    assert seen["ok"] and seen["stdout"] == "shared text\n", seen
    assert (writable / "made.txt").read_text() == "made"
    assert "Read-only file system" in failure(run(manager, f"open({str(shared / 'x')!r}, 'w')", policy))
    assert "FileNotFoundError" in failure(run(manager, f"open({str(sibling / 'secret.txt')!r})", policy))


def test_allow_net_opens_the_network_to_the_code(manager, workspace, listener):
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=5).close()"
    result = run(manager, code, rules("workspace", workspace, allow_net=True))
    assert result["ok"], result


# --- limits -------------------------------------------------------------------------------------------


def _limited(workspace: Path, **limits) -> dict:
    return rules("workspace", workspace, limits=limits)


def test_a_memory_hog_is_stopped_and_the_other_variables_survive(manager, workspace):
    policy = _limited(workspace, memory_mb=400)
    assert run(manager, "kept = 'still here'", policy)["ok"]
    hog = run(manager, "hog = bytearray(2 << 30)", policy)
    assert hog["error"]["type"] == "MemoryError" and hog["error"]["limit"] == "memory_mb"
    assert "memory limit (400 MB" in hog["error"]["message"]
    assert run(manager, "kept", policy)["statements"][0]["value"] == "'still here'"


def test_a_cpu_spinner_is_stopped_and_the_other_variables_survive(manager, workspace):
    policy = _limited(workspace, cpu_s=1)
    assert run(manager, "kept = 7", policy)["ok"]
    spin = run(manager, "while True:\n    pass", policy, timeout=60)
    assert spin["error"]["limit"] == "cpu_s" and "CPU time limit (1 s" in spin["error"]["message"]
    assert not spin["restarted"]
    assert run(manager, "kept * 6", policy)["statements"][0]["value"] == "42"


def test_a_fork_bomb_is_stopped_and_the_other_variables_survive(manager, workspace):
    if os.getuid() == 0 and worker_processes.pids_cgroup("probe", 1) is None:
        pytest.skip("root, and no pids cgroup to count processes with")
    worker_processes.remove_cgroup(worker_processes.pids_cgroup("probe", 1))
    policy = _limited(workspace, processes=24)
    assert run(manager, "kept = [1, 2]", policy)["ok"]
    bomb = ("import os, time\nchildren = []\ntry:\n    while len(children) < 5000:\n"
            "        pid = os.fork()\n        if pid == 0:\n            time.sleep(60)\n            os._exit(0)\n"
            "        children.append(pid)\nfinally:\n    for pid in children:\n        os.kill(pid, 9)\n"
            "        os.waitpid(pid, 0)")
    stopped = run(manager, bomb, policy, timeout=60)
    assert stopped["error"]["limit"] == "processes", stopped["error"]
    assert run(manager, "sum(kept)", policy)["statements"][0]["value"] == "3"


# --- llm-exec: the flags, the warning, the refusal -------------------------------------------------


def run_exec(args: list[str], input: str | None = None):
    from llmtools.cli.exec import exec_command
    from llmtools.inputs import group_exclusions

    return run_command(exec_command, args, input, prog_name="llm-exec", argv_filter=group_exclusions)


def test_off_warns_once_per_run():
    result = run_exec(["--sandbox", "off", "--eval", "1 + 1"])
    assert result.status == 0 and result.stdout == "2\n", result.stderr
    assert result.stderr.count("unsandboxed") == 1


def test_workspace_is_the_default_and_confines_eval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_exec(["--eval", "import os\nos.path.exists(os.path.expanduser('~/.bashrc')) or "
                                 "os.environ['HOME'].endswith('/work')"])
    assert (result.status, result.stdout, result.stderr) == (0, "True\n", "")


def test_without_bubblewrap_workspace_is_refused_and_the_default_falls_back_with_a_warning(
        tmp_path, monkeypatch):
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "true"):
        os.symlink(shutil.which(tool), bare / tool)
    monkeypatch.setenv("PATH", str(bare))
    refused = run_exec(["--sandbox", "workspace", "--eval", "1"])
    assert refused.status == 69, refused.stderr
    assert "bubblewrap (bwrap) is not installed" in refused.stderr and "--sandbox off" in refused.stderr
    fallback = run_exec(["--eval", "1"])
    assert fallback.status == 0 and fallback.stdout == "1\n"
    assert "unsandboxed" in fallback.stderr and "bubblewrap (bwrap) is not installed" in fallback.stderr


def test_a_bad_sandbox_setting_in_config_is_a_usage_error(tmp_path, llmtools_home):
    config = llmtools_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[exec]\nsandbox = "sometimes"\n')
    from llmtools import config as config_module

    config_module.load_config_cached.cache_clear()
    result = run_exec(["--eval", "1"])
    assert result.status == 2 and "sandbox modes: workspace, read-only, off" in result.stderr


def test_concurrent_helper_calls_from_threads_share_the_channel(manager, workspace):
    site = LocalSite(pdf=b"").start()
    try:
        code = ("from concurrent.futures import ThreadPoolExecutor\n"
                "with ThreadPoolExecutor(4) as pool:\n"
                f"    pages = list(pool.map(download, [{site.url('/article')!r}] * 6))\n"
                "len({len(page) for page in pages})")
        result = run(manager, code, rules("workspace", workspace), timeout=60)
    finally:
        site.stop()
    assert result["ok"], result
    assert result["statements"][-1]["value"] == "1"


def test_the_limit_that_fired_is_told_to_the_model_and_the_user(tmp_path, monkeypatch):
    from tests.test_exec_cli import Script, block

    monkeypatch.chdir(tmp_path)
    script = Script(tmp_path, block("Saving.", "kept = 5"), block("Hogging.", "hog = bytearray(3 << 30)"),
                    block("Still there?", "kept + 1"), "Done.")
    result = run_exec(["-m", script.model, "--memory-mb", "500", "--thread", "limits", "go"])
    assert result.status == 0, result.stderr
    told = script.result_sent(2)
    assert "MemoryError" in told and "memory limit (500 MB" in told and "--memory-mb" in told
    assert "llm-exec: warning: block stopped by a limit: stopped by the runtime's memory limit" in result.stderr
    assert script.result_sent(3) == "<helpers_result>\n6\n</helpers_result>"


# --- the runtime's machinery works the same inside --------------------------------------------------


def test_timeouts_and_a_restart_after_a_kill_keep_the_variables_inside(manager, workspace):
    policy = rules("workspace", workspace)
    assert run(manager, "kept = 'here'", policy)["ok"]
    slow = run(manager, "import time\ntime.sleep(60)", policy, timeout=1)
    assert slow["timed_out"] and slow["error"]["type"] == "Timeout" and not slow["restarted"]
    stubborn = run(manager, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                   policy, timeout=1)
    assert stubborn["timed_out"] and stubborn["restarted"], stubborn
    assert "kept" in stubborn["restored"]["names"]
    assert run(manager, "kept", policy)["statements"][0]["value"] == "'here'"


def test_user_helper_modules_load_inside(manager, workspace, tmp_path, llmtools_home):
    module = tmp_path / "elsewhere" / "myhelpers.py"
    module.parent.mkdir()
    module.write_text("def shout(text):\n    \"\"\"Upper-case text.\"\"\"\n    return text.upper()\n")
    config = llmtools_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[exec]\nhelpers = ["{module}"]\n')
    from llmtools import config as config_module

    config_module.load_config_cached.cache_clear()
    result = run(manager, "shout('quiet')", rules("workspace", workspace))
    assert result["ok"] and result["statements"][0]["value"] == "'QUIET'", result


def test_helpers_reach_the_model_through_the_daemon_from_inside(tmp_path, monkeypatch):
    """With a daemon the runtime's parent is the daemon: a helper's model call goes worker ->
    daemon -> provider, and the log row is written all the same."""
    from tests.helpers import run_process
    from tests.test_exec_cli import Script, block

    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    monkeypatch.chdir(tmp_path)
    script = Script(tmp_path, block("Asking.", "answer = llm_call('text', 'summarise')\nanswer"),
                    "the helper's answer", "Done.")
    result = run_process("llm-exec", ["-m", script.model, "--sandbox", "workspace", "go"], timeout=90)
    assert result.status == 0, result.stderr
    assert "no daemon" not in result.stderr
    assert script.result_sent(2) == "<helpers_result>\n\"the helper's answer\"\n</helpers_result>"


def test_the_parent_does_only_what_a_runtime_may_ask(manager, workspace, tmp_path):
    """Code that talks to the channel itself, bypassing the helpers, gets no more."""
    secret = tmp_path / "parent-only.txt"
    secret.write_text("only the parent can read this")
    grab = ("import gc\nfrom llmtools.runtime.channel import Channel\n"
            "channel = next(o for o in gc.get_objects() if isinstance(o, Channel))\n")
    policy = rules("workspace", workspace)
    assert run(manager, grab, policy)["ok"]
    for call, refusal in [
            ("channel.call('runtimes', (), {})", "not available to a runtime"),
            ("channel.call('daemon_control', (), {})", "not available to a runtime"),
            (f"list(channel.call('fetch', ([{secret.as_uri()!r}],), {{'timeout': 5}}))", "http(s) URLs only"),
            (f"list(channel.call('fetch', ([{str(secret)!r}],), {{'timeout': 5}}))", "http(s) URLs only"),
            ("channel.call('fetch', (), {'urls': ['http://x'], 'cookies_file': '/c', 'timeout': 5})",
             "with cookies"),
            ("import os\nchannel.call('chat_stream', (os.system,), {})", "cannot be sent")]:
        outcome = failure(run(manager, call, policy))
        assert refusal in outcome, (call, outcome)
    from llmtools import services

    assert run(manager, "from llmtools import services\nservices.runtimes()", policy)["error"]["message"].endswith(
        "is not available inside a runtime")
    assert callable(services.runtimes)  # the parent's own services are untouched


def test_the_model_is_told_what_the_sandbox_allows(manager, workspace):
    told = manager.evaluate("t", "__llmtools_helpers__()", timeout=30, sandbox=rules("workspace", workspace))
    assert "no network: use download()" in told["value"]
    assert "Sandbox" not in manager.evaluate("u", "__llmtools_helpers__()", timeout=30,
                                             sandbox=rules("off", workspace))["value"]
