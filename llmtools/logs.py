"""The exchange log: every model call, in SQLite, before the command exits.

A row is written when a call starts (status "running", with the writer's pid) and
completed when it ends ("ok", "partial" when the reader went away, "interrupted",
"error"), so even a killed process leaves the prompt behind; the next process to open the
log marks the rows of writers that died mid-call "lost". The database runs in WAL mode with a generous busy
timeout and short `BEGIN IMMEDIATE` transactions, so many commands running at once
(`xargs -P`, `llm-map`) wait their turn instead of failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

from llmtools.errors import UsageError

SCHEMA_VERSION = 3  # 2: prompt-cache columns; 3: the writer's pid, to find rows whose writer died
BUSY_TIMEOUT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    created TEXT NOT NULL,
    tool TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT,
    messages TEXT NOT NULL,
    response TEXT NOT NULL DEFAULT '',
    meta TEXT,
    status TEXT NOT NULL,
    error TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    ttft_s REAL,
    total_s REAL
);
CREATE INDEX IF NOT EXISTS responses_by_conversation ON responses (conversation_id);
"""
# Rows still "running" are few; a partial index finds them without a scan.
RUNNING_INDEX = ("CREATE INDEX IF NOT EXISTS responses_running ON responses (pid)"
                 " WHERE status = 'running'")

ADDED_COLUMNS = (
    # Prompt-cache reads and writes (input_tokens counts the whole prompt, these included).
    ("cache_read_tokens", "INTEGER"),
    ("cache_write_tokens", "INTEGER"),
    ("pid", "INTEGER"),  # the writer's, so rows of writers that died can be marked "lost"
)


def new_id() -> str:
    """Sortable by creation time (milliseconds first), unique across processes."""
    return f"{time.time_ns() // 1_000_000:011x}{os.urandom(4).hex()}"


def make_private(database: Path) -> None:
    """The log holds every prompt and answer: its directory 0700, the database and its WAL
    and shm files readable by nobody else, existing ones too (SQLite gives new WAL and shm
    files the database's mode, so it is created 0600 before SQLite first opens it). Only
    group and other bits are taken away: a log its owner made read-only stays read-only."""
    from llmtools.statedirs import ensure_private_dir

    database.parent.mkdir(parents=True, exist_ok=True)  # a file in the way: OSError, "not logged"
    ensure_private_dir(database.parent)
    os.close(os.open(database, os.O_RDONLY | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            mode = stat.S_IMODE(os.stat(f"{database}{suffix}").st_mode)
            if mode & 0o077:
                os.chmod(f"{database}{suffix}", mode & 0o700)
        except FileNotFoundError:
            pass
        except OSError:
            pass  # read-only media: nothing can be written there, and SQLite will say so


def new_conversation_id() -> str:
    """Random part first, so a few characters tell conversations apart (`--cid 3f9a`)."""
    return f"{os.urandom(4).hex()}{time.time_ns() // 1_000_000:011x}"


class LogStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._cannot_write: BaseException | None = None  # why the log was opened read-only

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._connection = self._open_for_writing()
            except (sqlite3.Error, OSError) as error:
                # Read-only media, a full disk, a directory we may not write: reading still
                # works (`llm logs`); a write raises this first error, the real cause.
                if not self.path.is_file():
                    raise
                self._connection = _open_read_only(self.path)
                self._cannot_write = error
        return self._connection

    def _writable(self) -> sqlite3.Connection:
        connection = self._connect()
        if self._cannot_write is not None:
            raise self._cannot_write
        return connection

    def _open_for_writing(self) -> sqlite3.Connection:
        make_private(self.path)
        # Not tied to the creating thread: llm-map's calls share one store (SharedLogStore).
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        try:
            connection.row_factory = sqlite3.Row
            # journal_mode is stored in the file: only the first process ever switches it,
            # the rest just read it, which takes no write lock.
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            if connection.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                with _transaction(connection):
                    _create_schema(connection)
            _mark_lost_rows(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # --- writing ---

    def start(self, *, conversation_id: str, tool: str, model: str, messages: list[dict],
              prompt: str | None) -> str:
        response_id = new_id()
        connection = self._writable()
        with _transaction(connection):
            connection.execute(
                "INSERT INTO responses (id, conversation_id, created, tool, model, prompt, messages, status,"
                " pid) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (response_id, conversation_id, _now(), tool, model, prompt,
                 json.dumps(messages, ensure_ascii=False), os.getpid()),
            )
        return response_id

    def finish(self, response_id: str, *, response: str, status: str, error: str | None = None,
               meta: dict | None = None, input_tokens: int | None = None,
               output_tokens: int | None = None, cost_usd: float | None = None,
               ttft_s: float | None = None, total_s: float | None = None,
               cache_read_tokens: int | None = None, cache_write_tokens: int | None = None) -> None:
        connection = self._writable()
        with _transaction(connection):
            connection.execute(
                "UPDATE responses SET response = ?, status = ?, error = ?, meta = ?, input_tokens = ?,"
                " output_tokens = ?, cost_usd = ?, ttft_s = ?, total_s = ?, cache_read_tokens = ?,"
                " cache_write_tokens = ? WHERE id = ?",
                (response, status, error, json.dumps(meta, ensure_ascii=False) if meta else None,
                 input_tokens, output_tokens, cost_usd, ttft_s, total_s, cache_read_tokens,
                 cache_write_tokens, response_id),
            )

    # --- reading ---

    def last_conversation_id(self) -> str | None:
        row = self._connect().execute(
            "SELECT conversation_id FROM responses ORDER BY rowid DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def conversation_of_response(self, response_id: str) -> str | None:
        row = self._connect().execute(
            "SELECT conversation_id FROM responses WHERE id = ?", (response_id,)).fetchone()
        return row[0] if row else None

    def find_conversation(self, id_or_prefix: str) -> str:
        rows = self._connect().execute(
            "SELECT DISTINCT conversation_id FROM responses WHERE conversation_id LIKE ? ESCAPE '\\'"
            " LIMIT 2", (_like_prefix(id_or_prefix),)).fetchall()
        if not rows:
            raise UsageError(f"no conversation {id_or_prefix!r} in the log (`llm logs` lists them)")
        if len(rows) > 1:
            raise UsageError(f"conversation id {id_or_prefix!r} is ambiguous; give more of it")
        return rows[0][0]

    def conversations_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """(conversation id, when it was last used) for ids starting with `prefix`, newest first."""
        rows = self._connect().execute(
            "SELECT conversation_id, max(created) FROM responses WHERE conversation_id LIKE ? ESCAPE '\\'"
            " GROUP BY conversation_id ORDER BY max(rowid) DESC", (_like_prefix(prefix),)).fetchall()
        return [(row[0], row[1]) for row in rows]

    def last_exchange(self, conversation_id: str, *, answered: bool = False) -> dict | None:
        """The conversation's newest row (with `answered`: the newest that has an answer,
        so an exchange that failed before any text arrived is not part of the thread)."""
        query = "SELECT * FROM responses WHERE conversation_id = ?"
        if answered:
            query += " AND (response != '' OR status = 'ok')"
        row = self._connect().execute(query + " ORDER BY rowid DESC LIMIT 1",
                                      (conversation_id,)).fetchone()
        return dict(row) if row else None

    def conversation_messages(self, conversation_id: str) -> list[dict]:
        """The whole thread: what the last answered call was sent plus what it answered."""
        row = self.last_exchange(conversation_id, answered=True)
        if row is None:
            return []
        messages = json.loads(row["messages"])
        if row["response"]:
            answer: dict = {"role": "assistant", "content": row["response"]}
            if row["meta"]:
                meta = json.loads(row["meta"])
                meta.pop("options", None)  # the call's settings, kept for -c, not part of the answer
                answer["meta"] = meta
            messages.append(answer)
        return messages

    def conversation_ids(self, limit: int = 50) -> list[str]:
        """The newest conversations first (for completion of --cid)."""
        rows = self._connect().execute(
            "SELECT conversation_id FROM responses GROUP BY conversation_id"
            " ORDER BY max(rowid) DESC LIMIT ?", (limit,)).fetchall()
        return [row[0] for row in rows]

    def recent(self, limit: int | None = 3, conversation_id: str | None = None, *,
               text: str | None = None, model: str | None = None, since: str | None = None) -> list[dict]:
        """The newest `limit` rows (all for None) that match every filter given, oldest first.

        `text` is looked for in the prompt and the answer (case-insensitively), `since` is
        an ISO time in UTC as the log stores it ("2026-11-29T09:30")."""
        conditions: list[str] = []
        parameters: list = []
        if conversation_id:
            conditions.append("conversation_id = ?")
            parameters.append(conversation_id)
        if text:
            conditions.append("(prompt LIKE ? ESCAPE '\\' OR response LIKE ? ESCAPE '\\')")
            parameters += ["%" + _like_prefix(text)] * 2
        if model:
            conditions.append("model = ?")
            parameters.append(model)
        if since:
            conditions.append("created >= ?")
            parameters.append(since)
        query = "SELECT * FROM responses"
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        query += " ORDER BY rowid DESC"
        if limit:
            query += " LIMIT ?"
            parameters.append(limit)
        rows = [dict(row) for row in self._connect().execute(query, parameters)]
        return rows[::-1]

    def short_conversation_ids(self, conversation_ids: set[str], shortest: int = 4) -> dict[str, str]:
        """Each id's shortest prefix (at least `shortest` characters) no other conversation shares."""
        every = sorted(row[0] for row in self._connect().execute(
            "SELECT DISTINCT conversation_id FROM responses"))
        short = {}
        for index, cid in enumerate(every):
            if cid not in conversation_ids:
                continue
            shared = max((_common_prefix(cid, every[other]) for other in (index - 1, index + 1)
                          if 0 <= other < len(every)), default=0)
            short[cid] = cid[:max(shortest, shared + 1)]
        return short

    def count(self) -> int:
        return self._connect().execute("SELECT count(*) FROM responses").fetchone()[0]


class _transaction:
    """BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies to
    the wait instead of a deadlock being detected half-way through."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.connection.execute("COMMIT")
        elif self.connection.in_transaction:
            # SQLite has already rolled back after some errors (a full disk): rolling back
            # again would replace the real cause with "no transaction is active".
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")


def _create_schema(connection: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    # Columns added since the first release, each added where it is missing: the upgrade path
    # is the same for a fresh log and one written by any older release.
    columns = {row[1] for row in connection.execute("PRAGMA table_info(responses)")}
    for column, kind in ADDED_COLUMNS:
        if column not in columns:
            connection.execute(f"ALTER TABLE responses ADD COLUMN {column} {kind}")
    connection.execute(RUNNING_INDEX)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing, not even WAL's shared-memory file: first as a plain
    read-only open, then as an immutable file (read-only media, where no -shm can exist)."""
    uri = path.resolve().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        connection = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
    connection.row_factory = sqlite3.Row
    return connection


def _mark_lost_rows(connection: sqlite3.Connection) -> None:
    """Rows left "running" by a writer that no longer exists (kill -9, a crash, power loss)
    become "lost", so the log never shows a call as still going for ever."""
    pids = [row[0] for row in connection.execute(
        "SELECT DISTINCT pid FROM responses WHERE status = 'running' AND pid IS NOT NULL")]
    if not pids:
        return
    from llmtools.launch import process_alive  # only with rows left running: not on every start

    dead = [pid for pid in pids if pid != os.getpid() and not process_alive(pid)]
    for pid in dead:
        with _transaction(connection):
            connection.execute(
                "UPDATE responses SET status = 'lost', error = ? WHERE status = 'running' AND pid = ?",
                (f"the writing process (pid {pid}) ended before the call did (killed?)", pid))


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _common_prefix(one: str, other: str) -> int:
    return len(os.path.commonprefix([one, other]))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() // 1_000_000 % 1000:03d}Z"


class SharedLogStore(LogStore):
    """One store for many threads (llm-map's concurrent calls): writes take turns on one
    connection instead of contending for SQLite's write lock from many, whose busy wait
    sleeps in steps of milliseconds. `close` is a no-op; `release` closes it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()

    def start(self, **fields) -> str:
        with self._lock:
            return super().start(**fields)

    def finish(self, response_id: str, **fields) -> None:
        with self._lock:
            super().finish(response_id, **fields)

    def close(self) -> None:
        pass

    def release(self) -> None:
        with self._lock:
            super().close()


def open_log() -> LogStore:
    from llmtools.statedirs import paths

    return LogStore(paths().log_db)


def open_shared_log() -> SharedLogStore:
    from llmtools.statedirs import paths

    return SharedLogStore(paths().log_db)
