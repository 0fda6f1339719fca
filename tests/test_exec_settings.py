"""llm-exec's sandbox settings: what the user is told to change, and how config.toml is read."""

from __future__ import annotations

import re

import pytest

from llmtools import config, configschema
from llmtools.errors import UsageError
from llmtools.runtime import limits, sandbox


def test_each_limit_is_named_by_a_flag_llm_exec_has_and_a_config_key_that_exists():
    from llmtools.cli.exec import exec_command

    flags = {option for parameter in exec_command.params for option in parameter.opts}
    for key, advice in limits.SETTING_NAMES.items():
        for flag in re.findall(r"--[a-z-]+", advice):
            assert flag in flags, (key, advice)
        assert f"[exec] {limits.CONFIG_KEYS[key]}" in advice
        assert limits.CONFIG_KEYS[key] in configschema.EXEC.keys, key


@pytest.fixture
def adopted(monkeypatch):
    """Use a configuration as a worker does (handed over, not read from a checked file)."""
    def adopt(settings: dict) -> None:
        monkeypatch.setattr(config, "_adopted", settings)
        config.load_config_cached.cache_clear()
    yield adopt
    config.load_config_cached.cache_clear()


@pytest.mark.parametrize(("value", "network"), [("false", False), ("true", True), (False, False), (True, True)])
def test_allow_net_in_config_means_what_it_says(adopted, value, network):
    adopted({"exec": {"allow_net": value, "sandbox": "off"}})
    rules, _ = sandbox.policy_from_settings(None, (), False, {})
    assert rules["allow_net"] is network
    assert sandbox.policy_from_settings(None, (), True, {})[0]["allow_net"] is True  # the flag wins


def test_allow_net_that_is_not_true_or_false_is_refused(adopted):
    adopted({"exec": {"allow_net": "perhaps", "sandbox": "off"}})
    with pytest.raises(UsageError, match="allow_net .* must be true or false"):
        sandbox.policy_from_settings(None, (), False, {})
