"""JSON schemas for the answers llm-bind and llm-compare ask a model for, and the check
every such answer gets here, whatever the provider promised.

The schemas are written to suit every provider's structured output at once: a top-level
object (Anthropic's tool input and OpenAI's response format both require one), every
property required and nullable where it may be absent, objects closed (OpenAI's strict
mode), small bounds where a runaway small model would otherwise never stop (llama.cpp
grammars follow `maxLength` and `maxItems`).

`validate` covers the keywords these schemas use (type, properties, required,
additionalProperties, items, enum, maxLength, maxItems, anyOf), which is all a caller
here needs; it returns the problems rather than raising, so a caller can repair what is
repairable and refuse the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmtools.bind import Parameter, Signature

QUESTION_MAX_CHARS = 300
REASON_MAX_CHARS = 400

# Python annotations a JSON schema can state exactly.
JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
              "list": "array", "dict": "object"}
ITEM_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object",
              list: "array"}


# An unannotated parameter: a plain value or a list of them, never a nested structure a
# small model could wander about in forever.
UNANNOTATED: dict[str, Any] = {"type": ["string", "number", "boolean", "array", "null"],
                               "items": {"type": ["string", "number", "boolean"]}}


def _nullable(json_type: str | None) -> dict[str, Any]:
    if json_type is None:
        return dict(UNANNOTATED)
    schema: dict[str, Any] = {"type": [json_type, "null"]}
    if json_type == "array":
        schema["items"] = {}
    return schema


def parameter_schema(parameter: Parameter) -> dict[str, Any]:
    annotation = (parameter.annotation or "").strip()
    if annotation and annotation not in JSON_TYPES:
        return {}  # a type a schema cannot state (Mapping[str, int], a class): any value
    return _nullable(JSON_TYPES.get(annotation))


def binding_schema(signature: Signature) -> dict[str, Any]:
    """{"arguments": {each parameter: value or null}, "missing": [names], "question": text or null}."""
    named = [p for p in signature.parameters if p.kind in ("normal", "keyword")]
    arguments: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: parameter_schema(p) for p in named},
        "required": [p.name for p in named],
        "additionalProperties": signature.takes_any_keyword,
    }
    missing: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "maxItems": max(1, len(named))}
    if named:
        missing["items"]["enum"] = [p.name for p in named]
    return {
        "title": f"bind_{signature.name}",
        "description": f"The arguments of {signature.name}() found in the content.",
        "type": "object",
        "properties": {"arguments": arguments, "missing": missing,
                       "question": {"type": ["string", "null"], "maxLength": QUESTION_MAX_CHARS}},
        "required": ["arguments", "missing", "question"],
        "additionalProperties": False,
    }


def list_schema(item_type: type) -> dict[str, Any]:
    """{"items": [...]}: an object, since no provider takes a bare array at the top."""
    item: dict[str, Any] = {}
    if item_type in ITEM_TYPES:
        item = {"type": ITEM_TYPES[item_type]}
        if item_type is list:
            item["items"] = {}
    return {"title": "list_items", "description": "The items the instruction asks for, in order.",
            "type": "object", "properties": {"items": {"type": "array", "items": item}},
            "required": ["items"], "additionalProperties": False}


def verdict_schema() -> dict[str, Any]:
    return {"title": "comparison", "description": "Whether the two are the same in substance, and why.",
            "type": "object",
            "properties": {"same": {"type": "boolean"},
                           "reason": {"type": "string", "maxLength": REASON_MAX_CHARS}},
            "required": ["same", "reason"], "additionalProperties": False}


# --- checking -------------------------------------------------------------------------------

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),)}


def _is_type(value: Any, json_type: str) -> bool:
    if json_type in ("integer", "number") and isinstance(value, bool):
        return False  # True is an int to Python, never a number to JSON
    if json_type == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _PYTHON_TYPES.get(json_type, (object,)))


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The ways `value` breaks `schema` (none: it is an instance), each naming where."""
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        if not any(_is_type(value, kind) for kind in allowed):
            return [f"{where}: expected {' or '.join(allowed)}, got {_json_kind(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    if "anyOf" in schema and all(validate(value, option, where) for option in schema["anyOf"]):
        return [f"{where}: matches none of the allowed forms"]
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return [f"{where}: longer than {schema['maxLength']} characters"]
    if isinstance(value, list):
        return _array_problems(value, schema, where)
    if isinstance(value, dict):
        return _object_problems(value, schema, where)
    return []


def _array_problems(value: list, schema: dict[str, Any], where: str) -> list[str]:
    problems = []
    if len(value) > schema.get("maxItems", len(value)):
        problems.append(f"{where}: more than {schema['maxItems']} items")
    item_schema = schema.get("items")
    if isinstance(item_schema, dict):
        for index, item in enumerate(value):
            problems += validate(item, item_schema, f"{where}[{index}]")
    return problems


def _object_problems(value: dict, schema: dict[str, Any], where: str) -> list[str]:
    properties = schema.get("properties") or {}
    problems = [f"{where}: {name!r} is required" for name in schema.get("required") or ()
                if name not in value]
    for name, item in value.items():
        if name in properties:
            problems += validate(item, properties[name], f"{where}.{name}")
        elif schema.get("additionalProperties") is False:
            problems.append(f"{where}: {name!r} is not allowed")
    return problems


def _json_kind(value: Any) -> str:
    for kind in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, kind):
            return kind
    return type(value).__name__
