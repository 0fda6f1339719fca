# A report from fetched pages, rebuilt only when its inputs change.
#
#   make -f scripts/report.mk URLS=urls.txt QUESTION=question.txt OUT=build
#   make -q -f scripts/report.mk ...    exit 0 if the report is up to date, 1 if not
#
# urls.txt holds one URL a line; question.txt what to ask about the pages. The pages are
# fetched once per change of urls.txt (build/pages.jsonl, a message stack); the report
# is asked again when the pages or the question change. Set MODEL to choose the model,
# LLM_FETCH_FLAGS (e.g. --no-browser) to fetch without the browser.
#
# .DELETE_ON_ERROR: a fetch or an answer that fails (a non-zero exit status, Ctrl-C,
# SIGTERM) removes the target it was writing, so a half-written report never looks done
# to the next `make`. Each command's own exit status is what make sees: llm exits non-zero
# on any failure (see EXIT STATUS in llm(1)).

.DELETE_ON_ERROR:

LLM ?= llm
LLM_FETCH ?= llm-fetch
LLM_FETCH_FLAGS ?=
MODEL ?=
URLS ?= urls.txt
QUESTION ?= question.txt
OUT ?= build

report: $(OUT)/report.md
.PHONY: report

$(OUT)/pages.jsonl: $(URLS)
	@mkdir -p $(@D)
	$(LLM_FETCH) $(LLM_FETCH_FLAGS) -o jsonl < $(URLS) > $@

$(OUT)/report.md: $(OUT)/pages.jsonl $(QUESTION)
	$(LLM) $(if $(MODEL),-m $(MODEL)) -n --raw "$$(cat $(QUESTION))" < $(OUT)/pages.jsonl > $@
