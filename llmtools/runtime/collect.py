"""Following one block's events from its worker to the end of the block, with the clock.

The clock runs per statement: every event pushes the deadline `timeout` seconds on. A
statement past it gets SIGINT (KeyboardInterrupt inside it, the namespace kept); one
that has not stopped `interrupt_grace` seconds later, or a cancel (interrupt(),
Ctrl-C) that is not obeyed in that time, gets its worker killed. What happened goes
into the call's BlockRun.
"""

from __future__ import annotations

import signal
import time

from llmtools.errors import Terminated
from llmtools.launch import EOF, TIMEOUT, WOKEN, describe_exit
from llmtools.runtime.outcome import BlockRun
from llmtools.runtime.process import SignalLatch, WorkerProcess


class BlockCollector:
    def __init__(self, worker: WorkerProcess, run: BlockRun, timeout: float,
                 interrupt_grace: float) -> None:
        assert worker.reader is not None
        self.worker = worker
        self.reader = worker.reader
        self.run = run
        self.timeout = timeout
        self.interrupt_grace = interrupt_grace
        self.deadline = time.monotonic() + timeout
        self.interrupt_deadline: float | None = None
        self.interrupted_for: str | None = None  # "timeout" or "cancel"
        self.stop_signal: int | None = None  # Ctrl-C or SIGTERM that came while the block ran

    def collect(self, request: dict) -> None:
        """Send the request and follow the block to its end; then pass on a Ctrl-C or
        SIGTERM that came meanwhile (as KeyboardInterrupt or Terminated)."""
        # The latch goes up before the request goes out: from then on the worker may be
        # running the block, and a signal must reach it as a cancel, never as an
        # exception that abandons the worker (and the snapshot it is about to write).
        with SignalLatch() as latch:
            if self._send(request, latch):
                while not self._step(latch):
                    pass
        if self.stop_signal == signal.SIGTERM:
            raise Terminated()
        if self.stop_signal is not None:
            raise KeyboardInterrupt

    def _send(self, request: dict, latch: SignalLatch) -> bool:
        try:
            accepted = self.worker.send(request, self.deadline)
        except OSError:
            accepted = False
        if not accepted:
            returncode = self.worker.kill()
            how = (describe_exit(returncode) if returncode != -signal.SIGKILL
                   else f"did not take the block within {self.timeout:g} s and was killed")
            self.run.worker_gone(how, None, None)
            self.stop_signal = latch.take()  # passed on, as after a block
        return accepted

    def _notice_cancel(self) -> None:
        """interrupt() or Ctrl-C has cancelled the block: it has the grace period to stop."""
        if self.worker.cancel_requested and self.interrupted_for != "cancel":
            self.interrupted_for = "cancel"
            self.interrupt_deadline = time.monotonic() + self.interrupt_grace

    def _step(self, latch: SignalLatch) -> bool:
        """Wait for the next event and act on it; True when the block is over."""
        self._notice_cancel()
        event = self.reader.next(self.interrupt_deadline or self.deadline, wake_fd=latch.read_fd)
        signum = latch.take()
        if signum is not None:
            # Ctrl-C or SIGTERM in this process (llm-exec without a daemon): stop the
            # statement, keep the thread's variables (and the snapshot the worker writes
            # after the block), then pass the signal on. A second one does not wait for
            # the statement.
            if self.stop_signal is not None:
                self.worker.kill()
                self.run.worker_gone("was killed", None, "cancel")
                return True
            self.stop_signal = signum
            self.worker.request_cancel()
        if event is WOKEN:
            return False
        # A cancel that came while we waited: what the worker says now is its answer to it.
        self._notice_cancel()
        if event is TIMEOUT:
            return self._time_is_up()
        if event is EOF:
            returncode = self.worker.kill()
            self.run.worker_gone(describe_exit(returncode), None, self.interrupted_for)
            return True
        return self._handle(event)

    def _time_is_up(self) -> bool:
        if self.interrupt_deadline is None:
            self.interrupted_for = "timeout"
            self.worker.signal(signal.SIGINT)
            self.interrupt_deadline = time.monotonic() + self.interrupt_grace
            return False
        self.worker.kill()
        self.run.worker_gone("was killed", None, self.interrupted_for)
        return True

    def _handle(self, event: dict) -> bool:
        kind = event.get("event")
        if kind in ("service", "service_cancel"):
            # The block's code asks for a model or the network (channel.py): answered in
            # a thread of its own while the clock keeps running.
            if self.worker.bridge is not None:
                self.worker.bridge.handle(event)
            return False
        self.worker.mark_on_request(kind not in ("done", "fatal"))
        if kind == "block":
            self.run.statements_total = event.get("statements_total")
        elif kind == "statement":
            self.run.statement_started(event)
            self.deadline = time.monotonic() + self.timeout
        elif kind == "statement_done":
            self.run.statement_done(event, self.interrupted_for)
            self.deadline = time.monotonic() + self.timeout
            if self.interrupted_for == "timeout":
                # The interrupted statement has ended (or had just ended on its own).
                self.interrupt_deadline = self.interrupted_for = None
        elif kind == "done":
            self.run.block_done(event)
            return True
        elif kind == "fatal":
            self.run.worker_failed(event.get("message"))
            return True
        return False
