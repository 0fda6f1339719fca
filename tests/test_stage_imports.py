"""What one pipeline stage imports: `llm -m echo hi` is the floor every stage pays.

A module joining this path costs every stage of every pipeline. This test names the
modules the path imports today; one that appears without being added here fails it, so
whoever adds it decides (import it inside the function that needs it, or add it below and
say why in the commit). The standard library is left out: what it pulls in varies by
Python version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# llmtools modules on the echo path (logged), in alphabetical order.
ECHO_PATH_MODULES = {
    "llmtools", "llmtools.ask", "llmtools.cli", "llmtools.cli.chat", "llmtools.cli.daemon",
    "llmtools.cli.listen", "llmtools.cli.logs", "llmtools.cli.main", "llmtools.cli.models",
    "llmtools.cli.options", "llmtools.cli.output", "llmtools.config", "llmtools.detect",
    "llmtools.errors", "llmtools.exchange", "llmtools.inputs", "llmtools.logs", "llmtools.mapping",
    "llmtools.mapping.limits", "llmtools.mapping.overflow", "llmtools.notices", "llmtools.pathwalk",
    "llmtools.providers", "llmtools.providers.base", "llmtools.providers.catalog",
    "llmtools.providers.echo", "llmtools.providers.retry", "llmtools.services", "llmtools.stack",
    "llmtools.statedirs", "llmtools.terminal",
}
# Packages from outside the standard library: click and nothing else.
ECHO_PATH_PACKAGES = {"click"}

PROBE = """
import json, runpy, sys
before = set(sys.modules)
sys.argv = ["llm", "-m", "echo", "hi"]
try:
    runpy.run_module("llmtools.cli.llm", run_name="__main__")
except SystemExit:
    pass
added = sorted(name for name in sys.modules if name not in before)
print(json.dumps(added), file=sys.stderr)
"""


def test_the_echo_path_imports_only_what_it_is_known_to(llmtools_home):
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LLMTOOLS_NO_DAEMON": "1"})
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stderr.strip().splitlines()[-1])
    ours = {name for name in added if name == "llmtools" or name.startswith("llmtools.")}
    packages = {name.split(".")[0] for name in added
                if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(("llmtools", "_"))}
    assert ours - ECHO_PATH_MODULES == set(), "new on the echo path: import it where it is needed, or list it"
    assert packages - ECHO_PATH_PACKAGES == set(), "a package joined every pipeline stage"
    assert "llmtools.logs" in ours  # the probe did run the logged path
