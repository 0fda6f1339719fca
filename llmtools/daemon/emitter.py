"""How a daemon command streams events to its client, and shows it is still alive.

While a command runs, a heartbeat (`{"event": "alive"}` every HEARTBEAT_S seconds) goes
out even when the command itself has nothing to say (a statement running, a model loading,
a page rendering). Clients can then bound every read: a daemon that stays silent far
longer than a heartbeat is stopped (`kill -STOP`) or hung, not busy, and the client gives
up on it instead of waiting for ever.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator

from llmtools.daemon import protocol

HEARTBEAT_S = 2.0


class Emitter:
    """Called as `emit(event)`, from any thread (a lock keeps lines whole).

    `heartbeat()` sends "alive" events for the duration; `on_disconnect(callback)` watches
    the connection while a command is busy without emitting (running a block) and calls
    back if the client hangs up, so the work can be stopped instead of finishing for nobody.
    """

    def __init__(self, connection, stream) -> None:
        self.connection = connection
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self._lock:
            protocol.send(self.stream, event)

    @contextlib.contextmanager
    def heartbeat(self, interval: float = HEARTBEAT_S) -> Iterator[None]:
        stopped = threading.Event()

        def beat() -> None:
            while not stopped.wait(interval):
                try:
                    self({"event": "alive"})
                except (OSError, ValueError):
                    return  # the client left; the command finds out when it next emits

        beater = threading.Thread(target=beat, name="heartbeat", daemon=True)
        beater.start()
        try:
            yield
        finally:
            stopped.set()
            beater.join()

    @contextlib.contextmanager
    def on_disconnect(self, callback: Callable[[], object]) -> Iterator[None]:
        import select

        done = threading.Event()
        wake_read, wake_write = os.pipe()

        def watch() -> None:
            try:
                readable, _, _ = select.select([self.connection, wake_read], [], [])
                # One request per connection: the client sends nothing more, so the
                # socket turning readable means end-of-file, i.e. it hung up.
                if self.connection in readable and not done.is_set():
                    callback()
            except (OSError, ValueError):
                pass

        watcher = threading.Thread(target=watch, name="disconnect-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            os.write(wake_write, b"x")
            watcher.join()
            os.close(wake_read)
            os.close(wake_write)
