"""One home each: byte sniffing (detect), the notice channel, the worst-status policy,
the text of a message's content and the token estimate."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from llmtools import detect, notices, stack
from llmtools.errors import ExitStatus, ProviderBusy, worst_status
from llmtools.providers.base import Event, ModelSpec, Provider, Request, TextDelta
from llmtools.providers.context import estimate_tokens
from llmtools.providers.retry import stream_with_retries
from tests.conftest import REPO

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


# --- detect -------------------------------------------------------------------------------


@pytest.mark.parametrize("data, kind", [
    (b"", detect.EMPTY),
    (b" \n\t\n", detect.EMPTY),
    (PNG_1x1, "image/png"),
    (b"\xff\xd8\xff\xe0 jpeg", "image/jpeg"),
    (b"GIF89a....", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"%PDF-1.7\n...", detect.PDF),
    (b"ELF\x00\x01\x02", detect.BINARY),
    (b"plain words\n", detect.TEXT),
    ("caf\u00e9".encode("latin-1"), detect.TEXT),  # not UTF-8: the reader says so, not the sniffer
    (b'{"role": "user", "content": "hi"}\n', detect.TEXT),
])
def test_sniff_tells_kinds_apart_by_content(data, kind):
    assert detect.sniff(data) == kind


def test_a_text_that_mentions_the_pdf_header_is_not_a_pdf_unless_asked_leniently():
    mail = b"From the scanner:\n%PDF-1.4\n..."
    assert detect.sniff(mail) == detect.TEXT
    assert not detect.is_pdf(mail)
    assert detect.is_pdf(mail, strict=False)
    assert not detect.is_pdf(b"x" * 2000 + b"%PDF-1.4", strict=False)  # past the first KiB


@pytest.mark.parametrize("text, is_stack", [
    ('\n\n{"role": "system", "content": "be brief"}\nnot json at all', True),
    ('{"role": "robot", "content": "x"}', False),
    ('{"role": "user"}', False),
    ('[{"role": "user", "content": "x"}]', False),
    ("# a heading\n{}", False),
    ("", False),
])
def test_looks_like_stack_judges_by_the_first_line(text, is_stack):
    assert detect.looks_like_stack(text) is is_stack


def test_stack_py_is_the_format_only():
    # stack.py must not sniff or import content code: detection is detect.py's.
    source = (REPO / "llmtools" / "stack.py").read_text()
    assert "%PDF" not in source and "\\x89PNG" not in source
    assert "llmtools.content" not in source
    assert not hasattr(stack, "image_media_type") and not hasattr(stack, "read_stack_bytes")


# --- notices --------------------------------------------------------------------------------


def test_notices_go_to_stderr_with_the_program_name_and_level(capsys, monkeypatch):
    monkeypatch.setattr(notices, "_program", "llm-test")
    notices.warn("skipping binary file x.bin")
    notices.note("pulling model smollm2")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "llm-test: warning: skipping binary file x.bin\nllm-test: pulling model smollm2\n"


def test_a_sink_takes_this_threads_notices_and_only_while_installed(capsys):
    told: list[tuple[str, str]] = []
    elsewhere: list[str] = []

    def other_thread() -> None:
        with notices_collected() as theirs:
            notices.warn("from the other thread")
        elsewhere.extend(message for _, message in theirs)

    with notices.notices_to(lambda level, message: told.append((level, message))):
        notices.warn("cut to fit")
        notices.tell("note", "downloading")
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    notices.warn("after")
    assert told == [("warning", "cut to fit"), ("note", "downloading")]
    assert elsewhere == ["from the other thread"]
    assert capsys.readouterr().err.endswith("warning: after\n")


def test_sinks_nest_and_the_outer_one_comes_back():
    with notices_collected() as outer:
        with notices_collected() as inner:
            notices.warn("inner")
        notices.warn("outer")
    assert inner == [("warning", "inner")] and outer == [("warning", "outer")]


def test_an_unknown_level_is_a_programming_error():
    with pytest.raises(ValueError, match="notice level"):
        notices.tell("debug", "x")


def test_the_old_import_path_of_the_sink_is_the_same_channel():
    from llmtools.providers import context

    assert context.notices_to is notices.notices_to and context.tell is notices.tell


class notices_collected:
    """`with notices_collected() as told:` collects (level, message) pairs."""

    def __enter__(self) -> list[tuple[str, str]]:
        self.told: list[tuple[str, str]] = []
        self._context = notices.notices_to(lambda level, message: self.told.append((level, message)))
        self._context.__enter__()
        return self.told

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)


# --- retries speak on the same channel ---------------------------------------------------------


class BusyOnce(Provider):
    """Refuses the first request as overloaded, then answers."""

    name = "busy-once"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.calls = 0

    def stream(self, request: Request) -> Iterator[Event]:
        self.calls += 1
        if self.calls == 1:
            raise ProviderBusy("overloaded", retry_after=0.0)
        yield TextDelta("fine")


def test_retry_notices_are_warnings_on_the_notice_channel():
    provider = BusyOnce(ModelSpec(name="m1", provider="busy-once", model_id="m1", max_retries=2))
    waits: list[float] = []
    with notices_collected() as told:
        events = list(stream_with_retries(provider, Request(messages=[stack.message("user", "hi")]),
                                          sleep=waits.append))
    assert [event.text for event in events] == ["fine"]
    assert told == [("warning", "model m1: overloaded; retrying in 0.0s (attempt 2 of 3)")]
    assert waits == [0.0]


def test_a_retry_notice_on_stderr_has_the_program_prefix():
    code = (
        "from llmtools import notices, stack\n"
        "from llmtools.errors import ProviderBusy\n"
        "from llmtools.providers.base import ModelSpec, Provider, Request, TextDelta\n"
        "from llmtools.providers.retry import stream_with_retries\n"
        "class P(Provider):\n"
        "    name = 'p'\n"
        "    calls = 0\n"
        "    def stream(self, request):\n"
        "        P.calls += 1\n"
        "        if P.calls == 1:\n"
        "            raise ProviderBusy('HTTP 529 overloaded', retry_after=0.0)\n"
        "        yield TextDelta('ok')\n"
        "notices.set_program_name('llm')\n"
        "spec = ModelSpec(name='m1', provider='p', model_id='m1')\n"
        "list(stream_with_retries(P(spec), Request(messages=[stack.message('user', 'hi')]), sleep=lambda s: None))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                               timeout=60, check=True)
    assert completed.stdout == ""
    assert completed.stderr == "llm: warning: model m1: HTTP 529 overloaded; retrying in 0.0s (attempt 2 of 4)\n"


# --- errors ----------------------------------------------------------------------------------


def test_worst_status_is_an_exit_status_and_ranks_unlisted_ones_last():
    assert worst_status([]) is ExitStatus.OK
    assert worst_status([ExitStatus.OK, ExitStatus.INTERRUPTED, ExitStatus.TEMPORARY_FAILURE]) \
        is ExitStatus.TEMPORARY_FAILURE
    assert worst_status([ExitStatus.INTERRUPTED]) is ExitStatus.INTERRUPTED
    assert isinstance(worst_status([65, 69]), ExitStatus)


# --- small shared pieces ------------------------------------------------------------------------


def test_content_text_joins_text_parts_and_leaves_images_out():
    parts = [{"type": "text", "text": "one"}, {"type": "image", "media_type": "image/png", "data": ""},
             {"type": "text", "text": "two"}]
    assert stack.content_text(parts) == "one\ntwo"
    assert stack.content_text("plain") == "plain"
    assert stack.text_of(stack.message("user", parts)) == "one\ntwo"


@pytest.mark.parametrize("text", ["", "hello", "a" * 301, "naïve café ✓ 文字", "\U0001f600" * 7])
def test_estimate_tokens_errs_high(text):
    # One token per three UTF-8 bytes, rounded up: above the usual four bytes a token for
    # English, so a prompt the estimate says fits does fit.
    estimate = estimate_tokens(text)
    assert estimate == -(-len(text.encode()) // 3)
    assert estimate >= (len(text) + 3) // 4
