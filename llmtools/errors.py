"""Exit statuses and the exceptions that carry them.

Every command exits through `llmtools.cli.main.run`, which maps an exception raised
anywhere in the core to one line on stderr and the status attached to its class. The
numbers follow sysexits(3) where one fits; they are documented in every man page.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILURE = 1  # generic failure; also "false" for predicates such as llm-compare
    USAGE = 2  # bad flags or arguments: unknown model, missing -p file, missing API key
    DATA_ERROR = 65  # bad input data: malformed stack, non-UTF-8 text, unreadable PDF
    NOT_LOGGED = 74  # the answer was given but the exchange log could not be written (EX_IOERR)
    UNAVAILABLE = 69  # a service cannot be reached: provider host down, daemon will not start
    TEMPORARY_FAILURE = 75  # still failing after retries: rate limits, overload, timeouts, cut streams
    # No answer of the form asked (EX_PROTOCOL): what llm-compare exits with when it has no
    # verdict for a reason other commands report as 1, which for it means "false".
    NO_VERDICT = 76
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); partial output and the log row are kept
    BROKEN_PIPE = 141  # the reader went away (128 + SIGPIPE), as `cat` and `yes` report it
    TERMINATED = 143  # SIGTERM (128 + SIGTERM); partial output and the log row are kept


# When several inputs of one command fail, the exit status is the most lasting failure's:
# a command to fix beats bad data, beats a refusal, beats an unreachable host, beats
# "try again later". Statuses not listed rank below all of these.
SEVERITY = (ExitStatus.USAGE, ExitStatus.DATA_ERROR, ExitStatus.FAILURE,
            ExitStatus.UNAVAILABLE, ExitStatus.TEMPORARY_FAILURE)


def worst_status(statuses: Iterable[int]) -> ExitStatus:
    """The status to exit with after several inputs ended with `statuses`: OK if all
    succeeded, else the most lasting failure among them (see SEVERITY)."""
    found = [ExitStatus(status) for status in statuses if status != ExitStatus.OK]
    if not found:
        return ExitStatus.OK
    rank = {status: index for index, status in enumerate(SEVERITY)}
    return min(found, key=lambda status: rank.get(status, len(SEVERITY)))


class LlmtoolsError(Exception):
    """An error the user can act on; its message is shown as one line."""

    status: ExitStatus = ExitStatus.FAILURE

    def __init__(self, message: str, *, status: ExitStatus | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class UsageError(LlmtoolsError):
    status = ExitStatus.USAGE


class InputError(LlmtoolsError):
    """Data given to a command cannot be used as it is (exit 65)."""

    status = ExitStatus.DATA_ERROR


class ServiceUnavailable(LlmtoolsError):
    status = ExitStatus.UNAVAILABLE


class TemporaryFailure(LlmtoolsError):
    status = ExitStatus.TEMPORARY_FAILURE


class ProviderError(LlmtoolsError):
    """A model provider refused or failed a request.

    `retryable` says whether the same request may succeed if sent again (rate limits,
    overload, 5xx, timeouts, refused connections); `retry_after` is the delay in seconds
    the server asked for, if it did. The status applies once retries are exhausted.
    """

    status = ExitStatus.FAILURE
    retryable = False

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: ExitStatus | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ProviderBusy(ProviderError):
    """429, 5xx, 529 overloaded or a timeout: worth retrying after a pause."""

    status = ExitStatus.TEMPORARY_FAILURE
    retryable = True


class ProviderUnreachable(ProviderError):
    """The connection could not be made at all (refused, DNS, TLS)."""

    status = ExitStatus.UNAVAILABLE
    retryable = True


class StreamCut(ProviderError):
    """The answer stopped part-way; what arrived is kept but the request is not resent."""

    status = ExitStatus.TEMPORARY_FAILURE


class ModelCrashed(ProviderError):
    """The process running a local model died (a native crash, the OOM killer).

    Not retried: a build that cannot run on this CPU crashes the same way every time. The
    next request starts a fresh model process.
    """

    status = ExitStatus.UNAVAILABLE


class ReaderGone(LlmtoolsError):
    """stdout's reader closed the pipe (`llm ... | head -1`): stop quietly.

    Raised by the output layer in place of BrokenPipeError, which click would swallow
    into a bare exit status 1.
    """

    status = ExitStatus.BROKEN_PIPE


class Terminated(BaseException):
    """Raised from the SIGTERM handler so that `finally` blocks (logging) still run."""


# --- errors as data, across a process boundary (the daemon, a model worker) ---------------


def error_to_json(error: LlmtoolsError) -> dict:
    return {"event": "error", "kind": type(error).__name__, "message": str(error),
            "status": int(error.status)}


def error_from_json(event: dict) -> LlmtoolsError:
    """The exception an error event stands for: its own class when it is one of ours."""
    try:
        status = ExitStatus(event.get("status", ExitStatus.FAILURE))
    except ValueError:
        status = ExitStatus.FAILURE
    cls = globals().get(str(event.get("kind")))
    if not (isinstance(cls, type) and issubclass(cls, LlmtoolsError)):
        cls = LlmtoolsError
    return cls(str(event.get("message", "error")), status=status)
