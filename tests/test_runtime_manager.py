"""RuntimeManager: real worker processes, run statement by statement, policed and restored."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from llmtools.runtime.layout import snapshot_file_name, thread_dir
from llmtools.runtime.manager import RuntimeManager
from tests.conftest import REPO


@pytest.fixture
def manager(tmp_path):
    runtimes = RuntimeManager(snapshot_dir=tmp_path / "snapshots", interrupt_grace=1.0)
    yield runtimes
    runtimes.close()


def run(manager, code: str, thread: str = "t", timeout: float = 20, **options) -> dict:
    return manager.execute(thread, textwrap.dedent(code), timeout=timeout, **options)


def value(manager, expression: str, thread: str = "t") -> str | None:
    answer = manager.evaluate(thread, expression, timeout=20)
    assert answer["ok"], answer["error"]
    return answer["value"]


def wait_for_exit(pid: int, timeout: float) -> bool:
    """True once process `pid` (not our child) has exited; waits on a pidfd, no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


# --- statements ---------------------------------------------------------------------


def test_statements_run_one_by_one_and_expression_values_show_as_in_a_repl(manager):
    result = run(manager, """\
        x = 6 * 7
        x
        print("x is", x)
        None
        a = 1; b = 2
        [a, b]
    """)
    assert result["ok"] and result["error"] is None
    statements = result["statements"]
    assert [s["source"] for s in statements] == [
        "x = 6 * 7", "x", 'print("x is", x)', "None", "a = 1", "b = 2", "[a, b]"]
    assert [s["value"] for s in statements] == [None, "42", None, None, None, None, "[1, 2]"]
    assert statements[2]["stdout"] == "x is 42\n"  # output belongs to the statement that printed it
    assert result["stdout"] == "x is 42\n"
    assert result["statements_total"] == 7
    assert all(s["status"] == "ok" for s in statements)


def test_a_failing_statement_keeps_earlier_effects_and_stops_the_rest(manager):
    result = run(manager, """\
        total = 10
        items = [1, 2, 3]
        ratio = total / 0
        never = True
    """)
    assert not result["ok"]
    error = result["error"]
    assert error["type"] == "ZeroDivisionError"
    assert error["message"] == "ZeroDivisionError: division by zero"
    assert error["statement"] == "ratio = total / 0"
    assert (error["index"], error["line"]) == (2, 3)
    assert "ratio = total / 0" in error["traceback"]
    assert "llmtools" not in error["traceback"]  # the runtime's own frames are left out
    assert {item["name"]: (item["type"], item["repr"]) for item in error["locals"]} == {
        "total": ("int", "10"), "items": ("list", "[1, 2, 3]")}
    assert len(result["statements"]) == 3 and result["statements_total"] == 4
    assert value(manager, "total") == "10"
    assert manager.evaluate("t", "never", timeout=20)["error"]["type"] == "NameError"


def test_a_syntax_error_runs_nothing(manager):
    result = run(manager, "ran = True\nif x\n    pass\n")
    assert result["error"]["type"] == "SyntaxError"
    assert result["error"]["line"] == 2 and result["error"]["statement"] == "if x"
    assert result["statements"] == []
    assert not manager.evaluate("t", "ran", timeout=20)["ok"]


def test_functions_tracebacks_and_getsource_see_code_defined_earlier(manager):
    run(manager, """\
        def half(n):
            return n / 0
    """)
    result = run(manager, "half(4)")
    assert "return n / 0" in result["error"]["traceback"]  # the source of an earlier block
    assert result["error"]["line"] == 1
    assert "return n / 0" in value(manager, "__import__('inspect').getsource(half)")


def test_output_of_child_processes_is_captured_in_order_and_input_does_not_hang(manager):
    result = run(manager, """\
        import subprocess, sys
        print("before", flush=True); subprocess.run(["echo", "child"]); print("after")
        print("oops", file=sys.stderr)
        try:
            input()
        except EOFError:
            print("no stdin")
    """)
    assert result["ok"], result["error"]
    assert result["stdout"] == "before\nchild\nafter\nno stdin\n"
    assert result["stderr"] == "oops\n"


def test_exit_does_not_end_the_runtime(manager):
    result = run(manager, "kept = 1\nimport sys\nsys.exit(3)")
    assert result["error"]["type"] == "SystemExit" and not result["restarted"]
    assert value(manager, "kept") == "1"


def test_a_flood_of_output_is_capped_and_counted(manager):
    result = run(manager, "for i in range(300_000): print('x' * 20)")
    assert result["ok"]
    assert len(result["stdout"].encode()) == 1 << 20
    assert sum(result["dropped_bytes"].values()) == 300_000 * 21 - (1 << 20)


def test_result_values_are_collected(manager):
    result = run(manager, "result({'n': 3})\nresult('text')\nresult(object)")
    assert [r["text"] for r in result["results"]] == ["{'n': 3}", "text", "<class 'object'>"]
    assert result["results"][0]["json"] == {"n": 3} and "json" not in result["results"][2]
    assert [s["value"] for s in result["statements"]] == [None, None, None]  # not shown twice


def test_evaluate_gives_str_for_strings_and_repr_otherwise(manager):
    run(manager, "name = 'Ada'\nnumbers = [1, 2]")
    assert value(manager, "name") == "Ada"
    assert value(manager, "numbers") == "[1, 2]"
    assert value(manager, "None") is None
    assert manager.evaluate("t", "x = 5", timeout=20)["value"] is None
    assert value(manager, "x") == "5"
    missing = manager.evaluate("t", "nothing_here", timeout=20)
    assert not missing["ok"] and missing["error"]["type"] == "NameError"


# --- threads -------------------------------------------------------------------------


def test_threads_do_not_see_each_others_variables(manager):
    run(manager, "secret = 'one'", thread="one")
    run(manager, "secret = 'two'", thread="two")
    assert value(manager, "secret", thread="one") == "one"
    assert value(manager, "secret", thread="two") == "two"
    run(manager, "only_here = 1", thread="one")
    assert manager.evaluate("two", "only_here", timeout=20)["error"]["type"] == "NameError"
    listed = {t["id"]: t for t in manager.threads()}
    assert set(listed) == {"one", "two"} and listed["one"]["pid"] != listed["two"]["pid"]
    assert listed["one"]["alive"] and listed["one"]["statements"] == 3
    assert listed["one"]["memory_mb"] > 1


def test_several_threads_execute_at_the_same_time(manager, tmp_path):
    """Each block waits at a barrier (a socket the test holds): it is only passed once
    every block is inside its worker at the same time, so serialised calls would hang."""
    path = str(tmp_path / "barrier.sock")
    barrier = socket.socket(socket.AF_UNIX)
    barrier.bind(path)
    barrier.listen(8)
    barrier.settimeout(30)
    count = 4
    results: dict[int, dict] = {}

    def call(number: int) -> None:
        results[number] = run(manager, f"""\
            import socket
            mine = {number}
            connection = socket.socket(socket.AF_UNIX)
            connection.connect({path!r})
            connection.recv(1)
            connection.close()
            mine * 10
        """, thread=f"thread-{number}", timeout=60)

    callers = [threading.Thread(target=call, args=(number,)) for number in range(count)]
    for caller in callers:
        caller.start()
    waiting = [barrier.accept()[0] for _ in range(count)]
    for connection in waiting:
        connection.sendall(b"go")
        connection.close()
    for caller in callers:
        caller.join(timeout=60)
    assert sorted(results) == list(range(count))
    for number, result in results.items():
        assert result["ok"], result["error"]
        assert result["statements"][-1]["value"] == str(number * 10)
    assert len({result["pid"] for result in results.values()}) == count


# --- timeouts, crashes, memory ------------------------------------------------------------


def test_a_runaway_statement_is_interrupted_at_its_timeout_and_variables_survive(manager):
    run(manager, "kept = [1, 2, 3]")
    result = run(manager, "started = True\nwhile True:\n    pass\nnever = 1", timeout=0.5)
    assert result["timed_out"] and not result["ok"]
    assert not result["restarted"]  # SIGINT was enough: same process, same namespace
    assert result["error"]["type"] == "Timeout"
    assert result["error"]["statement"] == "while True:\n    pass"
    assert "0.5 s" in result["error"]["message"]
    assert [s["status"] for s in result["statements"]] == ["ok", "timeout"]
    assert value(manager, "kept") == "[1, 2, 3]"
    assert value(manager, "started") == "True"  # the same block's earlier statement too


def test_a_statement_that_ignores_the_interrupt_is_killed_and_the_namespace_restored(manager):
    run(manager, """\
        count = 0
        def bump():
            global count
            count += 1
            return count
        shout = lambda s: s.upper()
    """)
    old_pid = manager.threads()[0]["pid"]
    result = run(manager, """\
        lost_in_this_block = 1
        while True:
            try:
                while True:
                    pass
            except KeyboardInterrupt:
                pass
    """, timeout=0.5)
    assert result["timed_out"] and result["restarted"]
    assert result["error"]["type"] == "Timeout" and "killed" in result["error"]["message"]
    assert sorted(result["restored"]["names"]) == ["bump", "count", "shout"]
    assert manager.threads()[0]["pid"] != old_pid
    # Restored functions share the restored namespace: `global count` is the same count.
    assert value(manager, "bump()") == "1"
    assert value(manager, "bump()") == "2"
    assert value(manager, "count") == "2"
    assert value(manager, "shout('ok')") == "OK"
    assert manager.evaluate("t", "lost_in_this_block", timeout=20)["error"]["type"] == "NameError"


def test_a_worker_that_dies_is_replaced_and_says_what_was_lost(manager):
    run(manager, """\
        import threading
        data = {"a": 1}
        lock = threading.Lock()
        numbers = (n for n in range(3))
    """)
    result = run(manager, "import os\nos._exit(7)")
    assert result["restarted"] and not result["ok"]
    assert result["error"]["type"] == "WorkerDied"
    assert "exited with status 7" in result["error"]["message"]
    assert result["error"]["statement"] == "os._exit(7)"
    restored = result["restored"]
    assert "data" in restored["names"] and "threading" in restored["names"]
    assert {item["name"] for item in restored["lost"]} == {"lock", "numbers"}
    assert all("pickle" in item["reason"] for item in restored["lost"])
    assert value(manager, "data['a'] + 1") == "2"
    assert value(manager, "threading.current_thread().name") == "MainThread"


def test_a_crash_in_c_code_is_reported_with_its_signal(manager):
    result = run(manager, "import ctypes\nctypes.string_at(0)")
    assert result["restarted"] and "SIGSEGV" in result["error"]["message"]
    assert run(manager, "1 + 1")["statements"][0]["value"] == "2"


def test_memory_limit_gives_memory_error_and_keeps_the_namespace(manager):
    run(manager, "small = 'still here'", memory_mb=400)
    result = run(manager, "big = bytearray(800 * 1024 * 1024)", memory_mb=400)
    assert result["error"]["type"] == "MemoryError" and not result["restarted"]
    assert value(manager, "small") == "still here"
    # The limit is per call: without one, the same allocation succeeds.
    assert run(manager, "big = bytearray(800 * 1024 * 1024)\nlen(big)")["ok"]


def test_a_memory_limit_below_what_the_worker_uses_is_refused_clearly(manager):
    result = run(manager, "x = 1", memory_mb=16)
    assert result["error"]["type"] == "MemoryLimit" and "16 MB" in result["error"]["message"]
    assert result["statements"] == []


def test_interrupt_stops_a_running_statement_and_keeps_variables(manager, tmp_path):
    path = str(tmp_path / "started.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(30)
    run(manager, "kept = 1")
    outcome: dict = {}
    caller = threading.Thread(target=lambda: outcome.update(run(manager, f"""\
        import socket, time
        socket.socket(socket.AF_UNIX).connect({path!r})
        time.sleep(600)
    """, timeout=600)))
    caller.start()
    listener.accept()  # the block is running
    assert manager.interrupt("t")["interrupted"]
    caller.join(timeout=30)
    assert outcome["interrupted"] and outcome["error"]["type"] == "Interrupted"
    assert not outcome["restarted"]
    assert value(manager, "kept") == "1"


# --- snapshots and lifetime ------------------------------------------------------------------


def test_a_thread_survives_its_manager_through_its_snapshot(tmp_path):
    with RuntimeManager(snapshot_dir=tmp_path) as first:
        run(first, "def triple(n):\n    return n * factor\nfactor = 3")
    assert (thread_dir(tmp_path, "t") / "snapshot").exists()
    with RuntimeManager(snapshot_dir=tmp_path) as second:
        answer = second.evaluate("t", "triple(5)", timeout=20)
        assert answer["value"] == "15"
        assert sorted(answer["restored"]["names"]) == ["factor", "triple"]
        assert not answer["restarted"]


def test_reset_forgets_the_thread_and_its_snapshot(manager, tmp_path):
    run(manager, "x = 1")
    pid = manager.threads()[0]["pid"]
    assert manager.reset("t") == {"ok": True, "thread_id": "t", "existed": True}
    assert wait_for_exit(pid, 10)
    assert not thread_dir(tmp_path / "snapshots", "t").exists()
    assert manager.evaluate("t", "x", timeout=20)["error"]["type"] == "NameError"
    assert manager.reset("never-used")["existed"] is False


def test_a_snapshot_kept_where_older_versions_kept_it_is_restored(tmp_path):
    with RuntimeManager(snapshot_dir=tmp_path) as first:
        run(first, "kept = 41")
    (thread_dir(tmp_path, "t") / "snapshot").replace(tmp_path / snapshot_file_name("t"))
    with RuntimeManager(snapshot_dir=tmp_path) as second:
        assert second.evaluate("t", "kept + 1", timeout=20)["value"] == "42"
    assert not (tmp_path / snapshot_file_name("t")).exists()


def test_odd_thread_ids_get_distinct_safe_file_names():
    names = {snapshot_file_name(thread) for thread in ("a/b", "a_b", "../x", "", "é")}
    assert len(names) == 5 and all("/" not in name and not name.startswith(".") for name in names)


def test_close_stops_busy_workers_and_later_calls_are_refused(tmp_path):
    manager = RuntimeManager(snapshot_dir=tmp_path)
    run(manager, "x = 1")
    pid = manager.threads()[0]["pid"]
    outcome: dict = {}
    caller = threading.Thread(target=lambda: outcome.update(run(manager, "while True: pass", timeout=600)))
    caller.start()
    manager.close()
    caller.join(timeout=30)
    assert wait_for_exit(pid, 10)
    assert not outcome["ok"] and not outcome["restarted"]
    assert run(manager, "1")["error"]["type"] == "RuntimeUnavailable"


def test_workers_exit_when_the_managing_process_dies(tmp_path):
    """The lifeline: a manager killed with SIGKILL takes its workers with it, even busy ones."""
    script = textwrap.dedent(f"""\
        import sys, threading
        from llmtools.runtime.manager import RuntimeManager
        manager = RuntimeManager(snapshot_dir={str(tmp_path)!r})
        pid = manager.evaluate("t", "__import__('os').getpid()", timeout=20)["value"]
        print(pid, flush=True)
        manager.execute("t", "while True: pass", timeout=600)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        worker_pid = int(process.stdout.readline())
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert wait_for_exit(worker_pid, 10)
    finally:
        process.kill()
        process.wait()


def test_a_value_that_cannot_be_pickled_in_time_is_left_out_of_the_snapshot(tmp_path):
    with RuntimeManager(snapshot_dir=tmp_path, snapshot_budget=1.0) as manager:
        run(manager, """\
            class Sticky:
                def __reduce__(self):
                    while True:
                        pass
            sticky = Sticky()
            kept = 'saved'
        """)
        # The snapshot after that block gives up on `sticky` (after its time budget) and
        # saves the rest; a crash now restores `kept` and reports `sticky` as lost.
        result = run(manager, "import os\nos._exit(1)", timeout=30)
        assert result["restarted"]
        assert "kept" in result["restored"]["names"]
        assert [item["name"] for item in result["restored"]["lost"]] == ["sticky"]
        assert result["restored"]["lost"][0]["reason"] == "pickling took longer than 0.2 s"
        assert value(manager, "kept") == "saved"


def test_a_worker_replaced_for_another_policy_says_it_restarted_and_fewer_inputs_do_not(manager, tmp_path):
    from llmtools.runtime import sandbox

    data = tmp_path / "data.csv"
    data.write_text("1\n")
    with_input = sandbox.policy("off", cwd=str(tmp_path), allow=[(str(data), False)])
    assert run(manager, "kept = 1\nlive = (n for n in range(3))", sandbox=with_input)["ok"]
    fewer = run(manager, "next(live)", sandbox=sandbox.policy("off", cwd=str(tmp_path)))
    assert fewer["ok"] and not fewer["restarted"]
    moved = run(manager, "kept", sandbox=sandbox.policy("off", cwd=str(tmp_path / "snapshots")))
    assert moved["restarted"] and moved["restored"]["names"] == ["kept"], moved
    assert manager.threads()[0]["restarts"] == 1


def test_a_manager_without_snapshots_leaves_no_temporary_directory(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the worker's too
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with RuntimeManager(persist=False) as manager:
        long = run(manager, "print('x' * 10_000)")
        assert long["ok"] and "out1" in json.dumps(long), long  # a kept output, somewhere
        assert manager.evaluate("t", "len(read_output('out1', 0, 20_000))", timeout=20)["value"] == "10001"
        assert list(scratch.iterdir())
    assert list(scratch.iterdir()) == []
