"""Local models live in a worker process: a native crash costs one request, never the daemon.

A model worker is made to die by a real signal (SIGILL, as a build for another CPU dies;
SIGSEGV) in the middle of an answer. The caller gets one line naming the signal and what
to do, exit 69, the log row says error, and the next call answers from a fresh worker;
through the daemon, the daemon keeps its browser and a live runtime. Also: the installed
llama.cpp has no AMX tile instructions, and the daemon and its workers never import code
from the caller's directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from llmtools.config import resolve_model
from llmtools.daemon.client import DaemonClient
from llmtools.errors import ModelCrashed
from llmtools.logs import open_log
from llmtools.providers.base import Request, TextDelta
from llmtools.providers.local import LocalProvider
from tests.conftest import command_path
from tests.fakes.llama_server import smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.helpers import run_process

# At temperature 0 SmolLM2 answers this with well over a hundred tokens, so a signal sent
# when its first text arrives always lands mid-answer.
LONG_ANSWER = ["--temperature", "0", "--max-tokens", "400",
               "Count from 1 to 300, separated by commas."]
LONG_REQUEST = Request(messages=[{"role": "user", "content": LONG_ANSWER[-1]}], max_tokens=400,
                       temperature=0)


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(") ", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def model_worker_of(parent: int) -> int | None:
    for pid in child_pids(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"llmtools.providers.local_worker" in command:
            return pid
    return None


def read_until_text(process: subprocess.Popen) -> bytes:
    """Block until the command has written some of the answer (it streams as it goes)."""
    assert process.stdout is not None
    data = os.read(process.stdout.fileno(), 4096)
    assert data, process.stderr.read() if process.stderr else b""
    return data


# --- the provider, in this process ---------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGILL, signal.SIGSEGV])
def test_a_worker_killed_mid_answer_is_one_error_and_the_next_call_answers(smollm2, signum):
    provider = LocalProvider(resolve_model("local:smollm2"))
    events = provider.stream(LONG_REQUEST)
    first = next(event for event in events if isinstance(event, TextDelta))
    assert first.text
    crashed_pid = provider.worker_pid
    os.kill(crashed_pid, signum)
    with pytest.raises(ModelCrashed) as caught:
        for _ in events:
            pass
    message = str(caught.value)
    assert signal.Signals(signum).name in message and "\n" not in message
    if signum == signal.SIGILL:
        assert "instructions this CPU cannot run" in message and "install-llama-cpp" in message
    assert caught.value.status == 69
    again = list(provider.stream(Request(messages=[{"role": "user", "content": "Hi"}], max_tokens=3)))
    assert any(isinstance(event, TextDelta) and event.text for event in again)
    assert provider.worker_pid not in (None, crashed_pid)
    provider.close()


def test_stopping_early_cancels_the_answer_and_keeps_the_worker(smollm2):
    provider = LocalProvider(resolve_model("local:smollm2"))
    events = provider.stream(LONG_REQUEST)
    next(event for event in events if isinstance(event, TextDelta))
    pid = provider.worker_pid
    events.close()  # what Ctrl-C or a client hanging up does to the stream
    answer = "".join(event.text for event in provider.stream(
        Request(messages=[{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0))
        if isinstance(event, TextDelta))
    assert answer and provider.worker_pid == pid
    provider.close()


# --- commands, without and with the daemon ---------------------------------------------------


def test_without_the_daemon_a_crash_is_a_message_not_a_silent_death(smollm2):
    env = {**os.environ, "LLMTOOLS_NO_DAEMON": "1"}
    process = subprocess.Popen([command_path("llm"), "-m", "local:smollm2", *LONG_ANSWER],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    read_until_text(process)
    worker = model_worker_of(process.pid)
    assert worker is not None
    os.kill(worker, signal.SIGILL)
    _, stderr = process.communicate(timeout=60)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 69, stderr
    assert len(lines) == 1 and lines[0].startswith("llm: error: ") and "SIGILL" in lines[0]
    [row] = open_log().recent(1)
    assert row["status"] == "error" and "SIGILL" in (row["error"] or "")


def test_the_daemon_survives_a_model_crash_with_its_browser_and_runtimes(smollm2, monkeypatch,
                                                                        llmtools_home, tmp_path):
    from tests.pages import LocalSite
    from tests.pdfs import TextPage, write_pdf

    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    site = LocalSite(pdf=write_pdf([TextPage(["A page."])])).start()
    try:
        assert run_process("llm-fetch", [site.url("/article")]).status == 0
    finally:
        site.stop()
    replies = tmp_path / "keep.jsonl"  # --eval does not create a thread: a task does
    replies.write_text('"<helpers>\\nkept = \'still here\'\\n</helpers>"\n"Kept."\n')
    assert run_process("llm-exec", ["-m", f"script:{replies}", "--thread", "keep", "keep it"]).status == 0
    client = DaemonClient(llmtools_home / "run")
    daemon = client.call("status")["pid"]

    process = subprocess.Popen([command_path("llm"), "-m", "local:smollm2", *LONG_ANSWER],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    read_until_text(process)
    [worker] = [row["pid"] for row in client.call("status")["model_workers"]]
    assert model_worker_of(daemon) == worker
    os.kill(worker, signal.SIGSEGV)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 69 and "SIGSEGV" in stderr.decode(), stderr
    assert stderr.decode().count("\n") == 1
    [row] = open_log().recent(1)
    assert row["status"] == "error"

    status = client.call("status")
    assert status["pid"] == daemon and status["browser"] is True
    assert [thread["id"] for thread in status["runtimes"]] == ["keep"]
    assert run_process("llm-exec", ["--thread", "keep", "--eval", "kept"]).stdout == "still here\n"
    again = run_process("llm", ["-m", "local:smollm2", "--max-tokens", "3", "hi"])
    assert again.status == 0 and again.stdout.strip(), again.stderr
    assert client.call("status")["pid"] == daemon


def test_models_check_generates_a_token_in_a_child_process(smollm2):
    result = run_process("llm", ["models", "check", "smollm2"])
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("local:smollm2: ok (1 token in ")


# --- the build --------------------------------------------------------------------------------


def test_the_installed_llama_cpp_has_no_amx_tile_instructions():
    llama_cpp = pytest.importorskip("llama_cpp")
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    libraries = list(Path(llama_cpp.__file__).parent.rglob("libggml-cpu*.so*"))
    assert libraries, "llama_cpp ships no libggml-cpu"
    for library in libraries:
        disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)],
                                     capture_output=True, text=True, check=True).stdout
        tiles = [line for line in disassembly.splitlines() if "\ttile" in line]
        assert tiles == [], f"{library} has AMX tile instructions: {tiles[:3]}"
    # And the build reports none (llama.cpp's own feature list).
    info = llama_cpp.llama_print_system_info().decode()
    assert "AMX_INT8 = 1" not in info


def test_portable_flags_name_what_the_cpu_has_and_never_amx():
    script = Path(__file__).resolve().parent.parent / "scripts" / "install-llama-cpp"
    namespace: dict = {"__name__": "install_llama_cpp"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102  (our own script)
    flags = {"avx", "avx2", "fma", "f16c", "bmi2", "amx_tile", "amx_int8", "amx_bf16",
             "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_vnni"}
    args = namespace["portable_cmake_args"]("x86_64", flags)
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args and "-DGGML_AVX512=ON" in args
    assert "-DGGML_AMX_TILE=OFF" in args and "-DGGML_AMX_INT8=OFF" in args
    assert "AMX_TILE=ON" not in args and "AMX_INT8=ON" not in args
    older = namespace["portable_cmake_args"]("x86_64", {"avx", "avx2", "fma", "f16c"})
    assert "-DGGML_AVX512=OFF" in older and "-DGGML_BMI2=OFF" in older
    assert namespace["portable_cmake_args"]("aarch64", flags) == ""


# --- the caller's directory ------------------------------------------------------------------


def test_a_llmtools_folder_in_the_working_directory_is_never_imported(monkeypatch, tmp_path):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    impostor = tmp_path / "llmtools"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("raise SystemExit('the impostor llmtools was imported')\n")
    monkeypatch.chdir(tmp_path)

    def start_thread(thread: str, code: str, env: dict | None = None):  # --eval does not create one
        replies = tmp_path / f"{thread}.jsonl"
        replies.write_text(json.dumps(f"<helpers>\n{code}\n</helpers>") + "\n" + json.dumps("Done.") + "\n")
        return run_process("llm-exec", ["-m", f"script:{replies}", "--thread", thread, "start"], env=env)

    first = start_thread("t", "def double(n):\n    return 2 * n")
    assert first.status == 0, first.stderr
    daemon = DaemonClient().call("status")["pid"]
    second = run_process("llm-exec", ["--thread", "t", "--eval", "double(21)"])
    assert (second.status, second.stdout) == (0, "42\n"), second.stderr
    assert DaemonClient().call("status")["pid"] == daemon
    # In-process too: the runtime worker a command starts itself.
    assert start_thread("solo", "started = True", env={"LLMTOOLS_NO_DAEMON": "1"}).status == 0
    alone = run_process("llm-exec", ["--thread", "solo", "--eval", "import os; os.getcwd()"],
                        env={"LLMTOOLS_NO_DAEMON": "1"})
    assert (alone.status, alone.stdout.strip()) == (0, str(tmp_path)), alone.stderr
