"""The functions the model's code can call, plus the user's own helper modules.

Built in: llm_call, llm_bind, llm_list_bind, result, download, pdf, read_file,
write_file, helpers. Users add more by naming modules in config.toml:

    [exec]
    helpers = ["mymodule", "~/llm/helpers.py"]

A module's `__all__` (or else every public function defined in it) becomes available
to the model, and each function's signature and docstring are put in the prompt, so a
good docstring is how a user tells the model when to use a helper. A user helper with a
built-in's name replaces the built-in.

These run inside the worker process. Per-call settings (the caller's resolved model spec
for llm_call, the caller's working directory, whether to log) arrive with each block as
its `context` (a HelperContext) and are kept in `STATE`. They are module-level functions so that a
variable holding one (`f = llm_call`) pickles by reference into the snapshot.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from llmtools import detect, stack
from llmtools.errors import LlmtoolsError, UsageError
from llmtools.runtime.outputs import output, read_output
from llmtools.runtime.results import HelperContext, ResultValue


class HelperState:
    def __init__(self) -> None:
        self.context: HelperContext = {}
        self.results: list[ResultValue] = []
        self.namespace: dict = {}
        self.user_helpers: dict[str, Any] = {}
        self.load_errors: list[str] = []
        self.confinement = ""  # what the sandbox allows, told to the model (see sandbox.describe)


STATE = HelperState()

CALL_SYSTEM = ("You are called from a Python program. Do what the instruction asks with the "
               "content given and reply with the result only: no preamble, no sign-off.")


class Document(str):
    """Text a helper fetched or extracted: a str, plus `.source` (URL or path) and
    `.message` (the full message, images included, which llm_call sends as it is)."""

    source: str | None
    message: dict | None

    def __new__(cls, text: str, source: str | None = None, message: dict | None = None):
        document = super().__new__(cls, text)
        document.source = source
        document.message = message
        return document

    def __reduce__(self):
        return (Document, (str(self), self.source, self.message))

    @property
    def text(self) -> str:
        return str(self)


def documents_from(payload: list) -> list[Document]:
    """llm-exec's inputs as they arrive with a block's context: `documents[i]`."""
    return [Document(str(item.get("text", "")), item.get("source")) for item in payload]


# --- model calls ----------------------------------------------------------------------


def _is_message(value: object) -> bool:
    return isinstance(value, dict) and stack.validation_error(value) is None


def as_messages(values: Any) -> list[dict]:
    """Whatever the code passes as content, as user messages for a model."""
    items = values if isinstance(values, (list, tuple)) else [values]
    messages = []
    for item in items:
        if isinstance(item, Document) and item.message is not None:
            messages.append(item.message)
        elif isinstance(item, Document):
            messages.append(stack.message("user", str(item), source=item.source))
        elif _is_message(item):
            messages.append(item)
        elif isinstance(item, str):
            messages.append(stack.message("user", item))
        elif isinstance(item, (bytes, bytearray)):
            media_type = detect.image_media_type(bytes(item))
            if media_type:
                messages.append(stack.image_message(bytes(item), media_type))
            else:
                messages.append(stack.message("user", bytes(item).decode("utf-8", "replace")))
        else:
            try:
                text = json.dumps(item, ensure_ascii=False, indent=1, default=str)
            except (TypeError, ValueError):
                text = repr(item)
            messages.append(stack.message("user", text))
    return messages


def llm_call(values, instruction: str, model: str | None = None) -> str:
    """Ask a model to do `instruction` with `values` (text, a Document, a message, or a
    list of them) in a fresh conversation; returns its answer as a string. Use it for
    work on text: summarise, translate, classify, extract. Content too long for the
    model is read in chunks (the most relevant ones, or all of them mapped and combined).
    `model` picks another model for this call (e.g. a cheap one for bulk work)."""
    from llmtools.mapping.overflow import call_with_content
    from llmtools.runtime.binding import helper_spec

    # Models are reached through llmtools.services only (Exchange asks it), so the daemon
    # or a sandbox's channel can carry these calls.
    context = STATE.context
    spec, own_model = helper_spec(model)
    options = dict(context.get("request_options") or {})
    if not own_model:
        options.pop("thinking", None)  # a budget set for llm-exec's model may not suit another one
    return call_with_content(spec, as_messages(values), str(instruction), system=CALL_SYSTEM,
                             log=context.get("log", True), tool="llm-exec", request_options=options)


def llm_bind(value, function, model: str | None = None):
    """Fill a function's arguments from `value` and call it. `function` is a callable
    or a signature string such as "send(to: str, amount: float)"; a string naming a
    function defined here calls that function, otherwise the bound arguments come back as
    a dict. What `value` does not give is looked for in the task, then in the program's
    variables. Raises BindError (with .question) when a required argument is in none of
    them. `model` picks the model that binds (default: [exec] helper_model, else this one)."""
    from llmtools import bind
    from llmtools.runtime import binding

    target = None
    if callable(function):
        target = function
        signature = bind.signature_of(function)
    else:
        signature = bind.parse_signature(str(function))
        candidate = STATE.namespace.get(signature.name)
        if callable(candidate):
            target = candidate
            if signature.doc is None:
                signature.doc = inspect.getdoc(candidate)
    bound = bind.bind_in_scopes(binding.scopes(value), signature, ask=binding.helper_ask(model))
    if not bound.complete:
        raise bind.BindError(bound)
    if target is None:
        return bound.arguments
    return target(**bound.arguments)


def llm_list_bind(value, description: str, item_type: type = str, model: str | None = None) -> list:
    """Turn `value` into a list of `item_type` (str, int, float, dict, ...) as `description`
    says, e.g. llm_list_bind(page, "names of the companies mentioned"). `model` picks the
    model (default: [exec] helper_model, else this one)."""
    from llmtools import bind
    from llmtools.runtime import binding

    return bind.list_bind(as_messages(value), str(description), ask=binding.helper_ask(model),
                          item_type=item_type)


def result(value):
    """Mark `value` as a result of the task: it is shown in full in <helpers_result>
    and recorded with the answer. Returns `value`."""
    from llmtools.runtime.execution import VALUE_LIMIT, clip

    text = value if isinstance(value, str) else repr(value)
    entry: ResultValue = {"type": type(value).__name__, "text": _clean(clip(text, VALUE_LIMIT))}
    try:
        encoded = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        encoded = None
    if encoded is not None and len(encoded) <= VALUE_LIMIT:
        entry["json"] = json.loads(encoded)  # a copy: later changes to `value` do not leak in
    STATE.results.append(entry)
    return value


def _clean(text: str) -> str:
    # A lone surrogate (from a filename or a bad decode) would break JSON consumers later.
    return text.encode("utf-8", "replace").decode("utf-8")


# --- content ---------------------------------------------------------------------------


def download(url: str) -> Document:
    """Fetch a web page (as Markdown) or a PDF (as text); returns a Document (a str with
    .source). Use llm_call on it for long pages rather than printing it all."""
    message = _fetched(str(url), use_browser=True)
    return Document(stack.text_of(message), source=url, message=message)


def _fetched(url: str, *, use_browser: bool) -> dict:
    # Through llmtools.services, which a runtime worker forwards to its parent: the
    # network is the parent's, whatever the sandbox lets the code itself reach.
    from llmtools import services
    from llmtools.content.fetch import DEFAULT_TIMEOUT_S

    for fetched in services.fetch([url], use_browser=use_browser, timeout=DEFAULT_TIMEOUT_S,
                                  tool="llm-exec"):
        if fetched.error is not None:
            raise fetched.error
        return fetched.message
    raise LlmtoolsError(f"{url}: nothing fetched")


def pdf(path_or_url: str) -> Document:
    """The text of a PDF file or URL (OCR for scanned pages); returns a Document."""
    from llmtools.content.pdf import pdf_message

    target = str(path_or_url)
    if target.startswith(("http://", "https://")):
        message = _fetched(target, use_browser=False)  # a PDF is extracted where it is fetched
        return Document(stack.text_of(message), source=target, message=message)
    data = Path(target).expanduser().read_bytes()
    message = pdf_message(data, source=target, tool="llm-exec")
    return Document(stack.text_of(message), source=target, message=message)


def read_file(path: str):
    """The contents of a file: a str if it is UTF-8 text, else bytes."""
    data = Path(path).expanduser().read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def write_file(path: str, content) -> str:
    """Write `content` (str, bytes, or anything else as str) to a file, replacing it;
    returns the file's absolute path."""
    target = Path(path).expanduser()
    if isinstance(content, (bytes, bytearray)):
        target.write_bytes(bytes(content))
    else:
        target.write_text(content if isinstance(content, str) else str(content), encoding="utf-8")
    return str(target.resolve())


def helpers() -> str:
    """The helpers you can call here, with their signatures and documentation."""
    return describe()


BUILTIN: dict[str, Any] = {function.__name__: function for function in (
    llm_call, llm_bind, llm_list_bind, result, download, pdf, read_file, write_file, helpers,
    read_output, output)}


# --- user helpers ------------------------------------------------------------------------


def _import_entry(entry: str):
    if entry.endswith(".py") or os.sep in entry:
        path = Path(entry).expanduser().resolve()
        name = path.stem
        existing = sys.modules.get(name)
        if existing is not None and getattr(existing, "__file__", None) == str(path):
            return existing
        if existing is not None:
            raise UsageError(f"a module named {name!r} is already imported; rename {path}")
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"{path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        # Registered before running it so that functions in it pickle by reference and a
        # restored worker (which loads helpers first) finds them by the same name.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(entry)


def _exported(module) -> dict[str, Any]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, value in vars(module).items()
                 if not name.startswith("_") and inspect.isfunction(value)
                 and value.__module__ == module.__name__]
    return {name: getattr(module, name) for name in names if hasattr(module, name)}


def configured_modules() -> list[str]:
    from llmtools.config import load_config

    entries = (load_config().get("exec") or {}).get("helpers") or []
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise UsageError("[exec] helpers in config.toml must be a list of module names or .py paths")
    return entries


def load_user_helpers(entries: list[str] | None = None) -> None:
    """Import the configured helper modules; a module that fails is reported, not fatal."""
    STATE.user_helpers, STATE.load_errors = {}, []
    try:
        entries = configured_modules() if entries is None else entries
    except LlmtoolsError as error:
        STATE.load_errors.append(str(error))
        return
    for entry in entries:
        try:
            STATE.user_helpers.update(_exported(_import_entry(entry)))
        except BaseException as error:  # noqa: BLE001 - a helper module's bug must not stop the worker
            STATE.load_errors.append(f"helper module {entry}: {type(error).__name__}: {error}")


def installed() -> dict[str, Any]:
    return {**BUILTIN, **STATE.user_helpers}


# --- documentation --------------------------------------------------------------------------


def _describe_one(name: str, value: Any) -> str:
    try:
        # eval_str: modules with `from __future__ import annotations` (this one) would
        # otherwise show every annotation quoted.
        signature = str(inspect.signature(value, eval_str=True))
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate, or no signature
        try:
            signature = str(inspect.signature(value))
        except (TypeError, ValueError):
            signature = "(...)"
    signature = re.sub(r"<class '([\w.]+)'>", r"\1", signature)
    doc = inspect.getdoc(value) or ""
    lines = doc.splitlines()
    if len(lines) > 15:
        lines = lines[:15] + ["..."]
    body = textwrap.indent("\n".join(lines), "    ") if lines else ""
    return f"{name}{signature}" + (f"\n{body}" if body else "")


def describe() -> str:
    parts = [_describe_one(name, value) for name, value in installed().items() if callable(value)]
    parts += [f"(not loaded: {error})" for error in STATE.load_errors]
    if STATE.confinement:
        parts.append(STATE.confinement)
    return "\n\n".join(parts)


def describe_json() -> str:
    """What llm-exec asks for to build its prompt (through `evaluate`, so it needs no new call)."""
    return json.dumps({"doc": describe(), "errors": STATE.load_errors})
