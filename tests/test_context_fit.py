"""fit_messages with a counter simple enough to check by hand: one token per character,
plus four per message (the shape of a chat template's overhead)."""

from __future__ import annotations

import pytest

from llmtools.errors import InputError
from llmtools.providers.context import CUT_MARKER, MIN_USEFUL_TOKENS, fit_messages
from llmtools.stack import content_text

PER_MESSAGE = 4


def count_messages(messages: list[dict]) -> int:
    return sum(len(content_text(message["content"])) + PER_MESSAGE for message in messages)


def fit(messages: list[dict], context_size: int, room: int = 10):
    return fit_messages(messages, context_size=context_size, room=room, count_messages=count_messages,
                        count_text=len, model_name="tiny")


def test_a_prompt_that_fits_comes_back_untouched():
    messages = [{"role": "user", "content": "hello"}]
    fitted = fit(messages, 100)
    assert fitted.messages is messages and fitted.prompt_tokens == 9 and fitted.warning is None


def test_oldest_turns_go_first_in_user_assistant_pairs_and_system_stays():
    messages = [{"role": "system", "content": "rules"},
                {"role": "user", "content": "a" * 40}, {"role": "assistant", "content": "b" * 40},
                {"role": "user", "content": "c" * 20}, {"role": "assistant", "content": "d" * 20},
                {"role": "user", "content": "question?"}]
    fitted = fit(messages, 110)  # budget 100: the first pair (88 tokens) must go, no more
    assert [m["content"] for m in fitted.messages] == ["rules", "c" * 20, "d" * 20, "question?"]
    assert fitted.prompt_tokens == count_messages(fitted.messages) == 70
    assert fitted.warning == ("the prompt (158 tokens) does not fit model tiny's 110-token context with 10 "
                              "tokens kept for the answer: dropped the 2 oldest messages (88 tokens); "
                              "70 tokens sent")


def test_the_middle_of_the_last_turn_is_cut_keeping_head_and_tail_with_one_marker():
    text = "HEAD" + "m" * 400 + "TAIL"
    fitted = fit([{"role": "user", "content": text}], 210, room=10)
    [message] = fitted.messages
    assert fitted.prompt_tokens <= 200
    assert message["content"].startswith("HEAD") and message["content"].endswith("TAIL")
    assert message["content"].count("characters cut here") == 1
    kept, cut = message["content"].split("\n\n[... ")[0], message["content"].split(" characters cut")[0]
    cut_chars = int(cut.rsplit(" ", 1)[-1])
    marker = CUT_MARKER.format(chars=cut_chars)
    assert len(message["content"]) - len(marker) + cut_chars == len(text)  # the marker counts truly
    assert kept.startswith("HEAD")
    assert "cut" in fitted.warning and "from the middle of the longest message;" in fitted.warning


def test_images_survive_a_cut_of_their_message_text():
    image = {"type": "image", "media_type": "image/png", "data": ""}
    fitted = fit([{"role": "user", "content": [{"type": "text", "text": "t" * 300}, image]}], 160)
    [message] = fitted.messages
    assert message["content"][1] == image
    assert "characters cut here" in message["content"][0]["text"]


def test_both_system_text_and_last_turn_are_cut_when_both_are_long():
    fitted = fit([{"role": "system", "content": "s" * 300}, {"role": "user", "content": "u" * 300}], 220)
    assert fitted.prompt_tokens <= 210
    assert all("characters cut here" in m["content"] for m in fitted.messages)
    assert "from the middle of the longest messages;" in fitted.warning


def test_when_not_even_a_few_tokens_fit_it_is_an_error_with_the_numbers():
    with pytest.raises(InputError) as caught:
        fit([{"role": "user", "content": "x" * 500}], 40, room=20)
    assert str(caught.value).startswith(
        "the prompt does not fit model tiny's 40-token context: it is 504 tokens and 20 are kept for the "
        f"answer; even with earlier messages dropped and the longest texts cut to {MIN_USEFUL_TOKENS} tokens")
