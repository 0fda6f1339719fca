"""The local provider on the real SmolLM2 through llama-cpp-python: plumbing, not cleverness.

Streams, exact usage from the model's own tokenizer, the chat template from the GGUF,
the context window (cut with a warning, or a clear error), one-line errors for a missing
file (2) and a file that is not a model (65), laziness and reuse of one loaded model.
"""

from __future__ import annotations

import json
import re
import threading

import pytest

from llmtools.config import resolve_model
from llmtools.errors import InputError
from llmtools.logs import open_log
from llmtools.providers import load_provider
from llmtools.providers.base import Finished, ModelSpec, Request, TextDelta, Usage
from llmtools.providers.llama_engine import LlamaEngine, StopStrings
from llmtools.providers.local import LocalProvider
from tests.fakes.llama_server import smollm2, smollm2_gguf  # noqa: F401  (fixtures)
from tests.helpers import run_llm, run_process

TOKEN_LIMIT_WARNING = "llm: warning: answer stopped at the token limit ({}); raise --max-tokens\n"
LONG_TEXT = " ".join(f"Paragraph {n}: the quick brown fox jumps over the lazy dog." for n in range(120))


def one_line_error(result, status: int, *fragments: str) -> None:
    assert result.status == status, (result.status, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llm: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tiny_config(write_config, path, context_size: int) -> None:
    write_config(f'[models.tiny]\nprovider = "local"\npath = "{path}"\n'
                 f"context_size = {context_size}\n")


# --- through the CLI ------------------------------------------------------------------------


def test_named_local_model_streams_an_answer_and_logs_exact_usage(smollm2):
    result = run_llm(["-m", "local:smollm2", "--max-tokens", "8", "-S", "Say hi"])
    assert result.status == 0, result.stderr
    _, answer = result.stack()
    assert answer["content"].strip()
    usage = answer["meta"]["usage"]
    assert 1 <= usage["output_tokens"] <= 8
    spec = resolve_model("local:smollm2")
    engine = LlamaEngine(spec, smollm2)
    rendered = engine.formatter(messages=[{"role": "user", "content": "Say hi"}]).prompt
    assert usage["input_tokens"] == len(engine.llama.tokenize(rendered.encode(), add_bos=False,
                                                              special=True))
    engine.close()
    [row] = open_log().recent(1)
    assert (row["model"], row["status"], row["cost_usd"]) == ("local:smollm2", "ok", 0.0)


def test_default_model_without_keys_is_the_local_one(smollm2):
    result = run_llm(["--max-tokens", "4", "hello"])
    assert result.status == 0, result.stderr
    # Four tokens end the answer early: the token-limit warning is the only thing said.
    assert result.stdout.strip() and result.stderr in ("", TOKEN_LIMIT_WARNING.format(4))
    [row] = open_log().recent(1)
    assert row["model"] == "local:smollm2"


def test_a_gguf_path_works_and_profile_shows_real_rates(smollm2, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_llm(["-m", str(smollm2), "--max-tokens", "12", "--profile", "Count to five"])
    assert result.status == 0, result.stderr
    [profile] = [line for line in result.stderr.splitlines() if line.startswith("profile:")]
    assert re.search(r"ttft=\d+\.\d+s", profile) and "cost=$0.000000" in profile
    assert re.search(r"out=\d+tok \(\d+\.\d tok/s\)", profile), profile
    assert re.search(r"in=\d+tok \(\d+\.\d tok/s\)", profile), profile


def test_a_relative_gguf_path_is_resolved_against_the_current_directory(smollm2, monkeypatch):
    monkeypatch.chdir(smollm2.parent)
    spec = resolve_model(smollm2.name)
    assert spec.provider == "local" and spec.model_id == str(smollm2.resolve())


def test_a_real_process_streams_from_the_local_model(smollm2):
    result = run_process("llm", ["-m", "local:smollm2", "--max-tokens", "6", "--profile", "Hi"])
    assert result.status == 0, result.stderr
    assert result.stdout.strip() and "profile: model=local:smollm2 ttft=" in result.stderr


def test_a_missing_file_exits_2():
    one_line_error(run_llm(["-m", "/no/such/model.gguf", "q"]), 2,
                   "model file not found: /no/such/model.gguf")


def test_an_unknown_local_name_exits_2_naming_the_models_directory():
    one_line_error(run_llm(["-m", "local:nonesuch", "q"]), 2, "no local model 'nonesuch'",
                   "models", "smollm2")


def test_a_file_that_is_not_gguf_exits_65(tmp_path):
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("these are my notes, not a model\n")
    one_line_error(run_llm(["-m", str(bogus), "q"]), 65, "not a GGUF model file")


def test_a_truncated_gguf_exits_65(smollm2, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm2.read_bytes()[:4096])
    one_line_error(run_llm(["-m", str(cut), "q"]), 65, str(cut))


def test_images_are_refused_and_thinking_is_ignored_with_a_warning(smollm2):
    image = json.dumps({"role": "user", "content": [
        {"type": "image", "media_type": "image/png", "data": "iVBORw0KGgo="}]})
    one_line_error(run_llm(["-m", "local:smollm2", "what is this"], input=image + "\n"), 65,
                   "cannot read images")
    result = run_llm(["-m", "local:smollm2", "-z", "low", "--max-tokens", "2", "hi"])
    assert result.status == 0 and "no thinking budget; -z ignored" in result.stderr


# --- the context window ----------------------------------------------------------------------


def test_a_prompt_longer_than_the_context_is_cut_with_a_warning(smollm2, write_config):
    tiny_config(write_config, smollm2, 256)
    result = run_llm(["-m", "tiny", "--max-tokens", "8", "-S", f"{LONG_TEXT}\n\nWhat animal jumps?"])
    assert result.status == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "warning" in line and "token limit" not in line]
    assert "does not fit model tiny's 256-token context with 8 tokens kept for the answer" in warning
    assert "characters (about" in warning and "from the middle of the longest message" in warning
    answer = result.stack()[-1]
    assert answer["meta"]["usage"]["input_tokens"] <= 256 - 8


def test_earlier_turns_are_dropped_first_and_named(smollm2, write_config):
    tiny_config(write_config, smollm2, 256)
    history = "".join(json.dumps({"role": role, "content": f"{role} turn {n}: {LONG_TEXT[:300]}"}) + "\n"
                      for n in range(6) for role in ("user", "assistant"))
    result = run_llm(["-m", "tiny", "--max-tokens", "8", "What now?"], input=history)
    assert result.status == 0, result.stderr
    assert re.search(r"dropped the \d+ oldest messages \(\d+ tokens\)", result.stderr), result.stderr
    assert "characters" not in result.stderr  # the last turn fitted once the old ones went


def test_nothing_useful_fitting_is_a_clear_error(smollm2, write_config):
    tiny_config(write_config, smollm2, 64)
    result = run_llm(["-m", "tiny", "--max-tokens", "32", "-s", LONG_TEXT, "Question?"])
    one_line_error(result, 65, "the prompt does not fit model tiny's 64-token context")


def test_a_larger_answer_than_the_context_leaves_is_warned_about(smollm2, write_config):
    tiny_config(write_config, smollm2, 128)
    result = run_llm(["-m", "tiny", "--max-tokens", "500", "--temperature", "0", "Hi"])
    assert result.status == 0, result.stderr
    assert re.search(r"the answer can be at most \d+ tokens", result.stderr)


# --- the provider itself ------------------------------------------------------------------------


def test_provider_is_lazy_then_streams_deltas_usage_and_finish(smollm2):
    provider = load_provider(resolve_model("local:smollm2"))
    assert isinstance(provider, LocalProvider) and not provider.is_loaded
    events = list(provider.stream(Request(messages=[{"role": "user", "content": "Tell a story"}],
                                          max_tokens=10)))
    assert provider.is_loaded
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) >= 2
    usage = [event for event in events if isinstance(event, Usage)][-1]
    assert usage.output_tokens == 10 and usage.input_tokens > 0
    assert events[-1] == Finished("length")
    assert provider.count_tokens("hello world") == 2
    provider.close()
    assert not provider.is_loaded


def test_same_text_as_llama_cpp_itself_at_temperature_zero(smollm2):
    import llama_cpp

    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What is a cat?"}]
    provider = LocalProvider(resolve_model("local:smollm2"))
    events = list(provider.stream(Request(messages=messages, max_tokens=20, temperature=0)))
    ours = "".join(event.text for event in events if isinstance(event, TextDelta))
    usage = [event for event in events if isinstance(event, Usage)][-1]
    provider.close()
    llama = llama_cpp.Llama(model_path=str(smollm2), n_ctx=8192, verbose=False)
    theirs = llama.create_chat_completion(messages=messages, max_tokens=20, temperature=0)
    llama.close()
    assert ours == theirs["choices"][0]["message"]["content"]
    assert usage.input_tokens == theirs["usage"]["prompt_tokens"]
    assert usage.output_tokens == theirs["usage"]["completion_tokens"]


def test_caller_stop_strings_end_the_answer_and_are_left_out(smollm2):
    provider = LocalProvider(resolve_model("local:smollm2"))
    request = Request(messages=[{"role": "user", "content": "What is a cat?"}], max_tokens=30,
                      temperature=0)
    full = "".join(e.text for e in provider.stream(request) if isinstance(e, TextDelta))
    word = full.split()[3]  # a word some way into the greedy answer
    request.stop = [word]
    events = list(provider.stream(request))
    provider.close()
    stopped = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert stopped == full[: full.index(word)] and events[-1] == Finished("stop")


def test_one_instance_serves_concurrent_requests_with_one_loaded_model(smollm2):
    provider = LocalProvider(resolve_model("local:smollm2"))
    answers: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(number: int) -> None:
        try:
            events = provider.stream(Request(messages=[{"role": "user", "content": f"Say {number}"}],
                                             max_tokens=6, temperature=0))
            answers[number] = "".join(e.text for e in events if isinstance(e, TextDelta))
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    loaded = []
    for thread in threads:
        thread.join(60)
        loaded.append(provider.worker_pid)
    assert errors == [] and sorted(answers) == [0, 1, 2]
    assert all(answers.values()) and len(set(loaded)) == 1 and loaded[0] is not None
    # Asked again, alone, the same question gives the same greedy answer: no state leaks.
    again = "".join(e.text for e in provider.stream(
        Request(messages=[{"role": "user", "content": "Say 1"}], max_tokens=6, temperature=0))
        if isinstance(e, TextDelta))
    assert again == answers[1]
    provider.close()


def test_a_missing_catalogue_model_is_found_lazily_not_at_construction(llmtools_home):
    provider = LocalProvider(ModelSpec(name="local:smollm2", provider="local", model_id="smollm2"))
    assert not provider.is_loaded  # nothing was looked up or pulled yet


def test_a_nonexistent_path_is_refused_when_used():
    provider = LocalProvider(ModelSpec(name="x", provider="local", model_id="/no/such.gguf"))
    with pytest.raises(Exception, match="model file not found"):
        list(provider.stream(Request(messages=[{"role": "user", "content": "q"}])))


def test_a_non_gguf_is_refused_before_llama_cpp_sees_it(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"\x7fELF" + bytes(100))
    provider = LocalProvider(ModelSpec(name="x", provider="local", model_id=str(bogus)))
    with pytest.raises(InputError, match="not a GGUF model file"):
        provider.load()


def test_stop_strings_hold_back_a_possible_start_and_stop_at_a_whole_one():
    stops = StopStrings(["<|im_end|>"])
    assert stops.feed("Hello <|im") == ("Hello ", False)
    assert stops.feed("_end|> more") == ("", True)
    other = StopStrings(["<|im_end|>"])
    assert other.feed("a <") == ("a ", False)
    assert other.feed("b") == ("<b", False)
    assert other.feed("", final=True) == ("", False)


# --- listing -------------------------------------------------------------------------------------


def test_models_list_shows_local_files_sizes_and_the_default(smollm2, tmp_path):
    extra = smollm2.parent / "other-model.gguf"
    extra.symlink_to(smollm2.resolve())
    result = run_llm(["models", "list"])
    assert result.status == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "default: local:smollm2 (no API key set)"
    [smol] = [line for line in lines if "local:smollm2" in line and not line.startswith("default")]
    assert smol.startswith("* ") and "SmolLM2-135M-Instruct.Q4_1.gguf, 98.4 MB" in smol
    assert any("local:other-model" in line and "98.4 MB" in line for line in lines)
    rows = [json.loads(line) for line in run_llm(["models", "list", "--json"]).stdout.splitlines()]
    [row] = [row for row in rows if row["name"] == "local:smollm2"]
    assert row["is_default"] and row["size"] == 98_362_432 and row["path"].endswith(".gguf")
    assert "path" not in next(row for row in rows if row["name"] == "echo")


def test_models_list_says_how_to_pull_a_model_that_is_not_there():
    result = run_llm(["models", "list"])
    [smol] = [line for line in result.stdout.splitlines() if line.startswith("* local:smollm2")]
    assert "not pulled yet: `llm models pull smollm2`" in smol
