"""Small messages a new user reads: what changed, what to set, which file is the problem."""

from __future__ import annotations

import base64

from tests.fakes.fixtures import openai_server  # noqa: F401  (fixtures)
from tests.fakes.loopback import HttpError
from tests.helpers import run_llm

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
                       "WjR9awAAAABJRU5ErkJggg==")


def test_401_from_a_configured_server_names_api_key_env(openai_server, write_config):  # noqa: F811
    write_config(f'[models.house]\nbase_url = "{openai_server.base_url}"\nretries = 0\n')
    openai_server.script(HttpError.unauthorized("missing key"))
    result = run_llm(["-m", "house", "hi"])
    assert result.status != 0
    assert "api_key_env" in result.stderr and "[models.house]" in result.stderr
    assert "OPENAI_API_KEY" not in result.stderr


def test_401_with_api_key_env_set_names_the_variable(openai_server, write_config):  # noqa: F811
    write_config(f'[models.house]\nbase_url = "{openai_server.base_url}"\napi_key_env = "HOUSE_KEY"\n'
                 "retries = 0\n")
    openai_server.script(HttpError.unauthorized("missing key"))
    result = run_llm(["-m", "house", "hi"])
    assert "set HOUSE_KEY (named by api_key_env in [models.house]" in result.stderr


def test_models_default_and_alias_say_what_changed():
    set_default = run_llm(["models", "default", "echo"])
    assert set_default.status == 0
    assert "default model: echo (was " in set_default.stderr and "config.toml" in set_default.stderr
    unset = run_llm(["models", "default", "--unset"])
    assert "default_model removed" in unset.stderr and "the default is now" in unset.stderr
    alias = run_llm(["models", "alias", "e", "echo"])
    assert "alias e -> echo (new)" in alias.stderr
    again = run_llm(["models", "alias", "e", "gpt-4.1"])
    assert "alias e -> gpt-4.1 (was echo)" in again.stderr
    removed = run_llm(["models", "alias", "--remove", "e"])
    assert "alias e removed" in removed.stderr
    assert set_default.stdout == alias.stdout == removed.stdout == ""


def test_image_errors_name_the_file(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)
    result = run_llm(["-m", "local:smollm2", "-p", str(photo), "what is this"])  # refused before loading
    assert result.status == 65
    assert f"{photo} is an image" in result.stderr and "message 2" not in result.stderr
    piped = run_llm(["-m", "local:smollm2", "what is this"], input=PNG)
    assert "the image piped in" in piped.stderr
