# llmtools: `make demo` sets everything up and runs a pipeline on the local model;
# `make test` sets everything up and runs the whole test suite. Both are idempotent.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

SYSTEM_PACKAGES := chromium poppler-utils tesseract-ocr tesseract-ocr-eng \
	libpoppler-cpp-dev pkg-config g++ htop vim bubblewrap

.PHONY: setup system-packages local-runtime model demo test bench man completions clean

setup: $(STAMP) model man

system-packages:
	@scripts/install-system-packages $(SYSTEM_PACKAGES)

$(PY):
	$(PYTHON) -m venv $(VENV)

# A portable llama-cpp-python, before pip could build one tuned to this CPU (which
# crashes on CPUs with AMX, and on any other CPU the venv is copied to). Built once into
# a cache keyed by version and flags (~/.cache/llmtools/wheels); a no-op when the venv
# already holds that build. Your own CMAKE_ARGS (a GPU build) replace the portable flags.
local-runtime: | $(PY) system-packages
	@scripts/install-llama-cpp $(PY)

# editable_mode=compat: a plain .pth path entry, which costs nothing at start-up
# (the default import-hook finder adds ~15 ms to every command).
$(STAMP): pyproject.toml | local-runtime
	$(PY) -m pip install -q --disable-pip-version-check -e '.[all,test]' \
		--config-settings editable_mode=compat
	touch $@

# Pull the model, then generate one token with it in a child process: a llama.cpp build
# this CPU cannot run fails here, in one line, rather than at the first question.
model: $(STAMP) local-runtime
	$(VENV)/bin/llm models pull smollm2
	$(VENV)/bin/llm models check smollm2

demo: setup
	printf 'Unix pipes connect the output of one program to the input of the next.\n' \
		| $(VENV)/bin/llm -S "Summarise this in five words." \
		| $(VENV)/bin/llm "Now say it as a question."

# Lint and types first: they take seconds and name the line; then the whole suite.
test: setup
	$(VENV)/bin/ruff check llmtools tests scripts scripts/install-llama-cpp
	$(VENV)/bin/mypy llmtools
	$(PY) -m pytest -q

bench: setup
	$(PY) scripts/bench_startup.py
	$(PY) scripts/bench_stages.py
	$(PY) scripts/bench_daemon.py
	$(PY) scripts/bench_local.py
	$(PY) scripts/bench_exec.py --daemon
	$(PY) scripts/bench_fetch.py

# Man pages where man(1) looks without root: the venv's share/man, found through PATH when
# .venv/bin is on it (man-db maps each bin/ on PATH to ../share/man), or MANDIR=~/.local/share/man.
MANDIR ?= $(VENV)/share/man
man:
	@scripts/install-man "$(MANDIR)"

completions: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/gen-completions

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
