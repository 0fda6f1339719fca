"""Issue 14 (and 12): config.toml is checked against one schema when it is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import run_llm, run_process


@pytest.mark.parametrize("text, where, wanted", [
    ('aliases = "x"\n', "[aliases]", "a table"),
    ("providers = 1\n", "[providers]", "a table"),
    ("[models.X]\nbase_url = 5\n", "[models.X] base_url", "a non-empty string"),
    ('[models.X]\ncontext_size = "big"\n', "[models.X] context_size", "a whole number above 0"),
    ('[exec]\nhelpers = "mod"\n', "[exec] helpers", "a list of strings"),
    ("timeout = 0\n", "timeout", "a number above 0"),
    ("retries = -1\n", "retries", "a whole number, 0 or more"),
    ("timeout = true\n", "timeout", "a number above 0"),
    ("[providers.openai]\nbase_url = []\n", "[providers.openai] base_url", "a string"),
    ('[models."a b"]\nprice_input = "free"\n', '[models."a b"] price_input', "a number, 0 or more"),
])
def test_a_wrongly_typed_value_is_bad_data_in_one_line(write_config, text, where, wanted):
    path = write_config(text)
    result = run_llm(["-m", "echo", "hi"])
    assert result.status == 65, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and f"{where} must be {wanted}" in lines[0]


def test_a_bad_model_table_never_reaches_the_daemon(write_config, monkeypatch):
    monkeypatch.delenv("LLMTOOLS_NO_DAEMON")
    write_config('[models.X]\nbase_url = 5\n')
    result = run_process("llm", ["-m", "X", "hi"], timeout=60)
    assert result.status == 65, result.stderr
    assert "daemon crashed" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("text, warning", [
    ('[models.X]\nbase_url = "http://127.0.0.1:9/v1"\nmodle = "m"\n',
     "unknown key [models.X] modle; did you mean 'model'?"),
    ('defualt_model = "echo"\n', "unknown key defualt_model (ignored); did you mean 'default_model'?"),
    ('[exec]\nmax_step = 3\n', "unknown key [exec] max_step (ignored); did you mean 'max_steps'?"),
    ('colour = "blue"\n', "unknown key colour (ignored)"),
])
def test_an_unknown_key_warns_with_the_nearest_known_one(write_config, text, warning):
    write_config(text)
    result = run_llm(["-m", "echo", "hi"])
    assert result.status == 0, result.stderr
    assert warning in result.stderr


def test_backend_options_in_a_model_table_are_not_warned_about(write_config):
    write_config('[models.X]\nbase_url = "http://127.0.0.1:9/v1"\nn_threads = 2\ntemperature = 0.2\n')
    result = run_llm(["-m", "echo", "hi"])
    assert result.status == 0 and "warning" not in result.stderr, result.stderr


def test_a_good_file_passes_unchanged(write_config):
    write_config('default_model = "echo"\ntimeout = 5\nretries = 0\n[aliases]\ne = "echo"\n'
                 '[exec]\nhelpers = ["json"]\nmax_steps = 4\n[models.q]\nbase_url = "http://127.0.0.1:9/v1"\n'
                 'context_size = 4096\nprice_input = 0\n')
    result = run_llm(["-m", "e", "hi"])
    assert result.status == 0 and result.stderr == "", result.stderr


def test_a_runtime_worker_gets_the_config_without_its_secrets(write_config):
    # The sandbox hides config.toml from model code; the worker is handed this copy instead.
    from llmtools.config import load_config_cached, without_secrets

    write_config('[providers.openai]\napi_key = "sk-secret"\nbase_url = "http://127.0.0.1:9/v1"\n'
                 '[models.q]\nbase_url = "http://127.0.0.1:8/v1"\napi_key = "sk-other"\n'
                 'api_key_env = "Q_KEY"\nmax_tokens = 64\n[exec]\nhelper_model = "q"\n')
    shared = without_secrets(load_config_cached())
    assert "sk-" not in repr(shared)
    assert shared["models"]["q"] == {"base_url": "http://127.0.0.1:8/v1", "api_key_env": "Q_KEY", "max_tokens": 64}
    assert shared["exec"] == {"helper_model": "q"}


def test_loading_the_schema_does_not_import_difflib():
    # difflib is for reporting an unknown key; every command loads the schema.
    probe = "import sys, llmtools.configschema; print('difflib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
