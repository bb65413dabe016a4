"""The OpenAPI description of the documented API, and the request checks the sandbox draws from it.

Owns ``openapi.json`` (shipped beside this module): loading it once, matching a path to one of its
templates, the methods a path allows (for ``405`` and ``Allow``), and a small validator for the few
JSON Schema shapes its requests use (objects with required string fields, bounded strings and
integers, ``$ref`` and ``allOf``). A request that breaks the description gets
``SandboxError(400)`` naming the field. It must not do I/O beyond reading that one packaged file,
and it does not decide anything the service decides (an unknown domain, a balance too low).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import unquote

from ._jsonio import loads
from ._state import SandboxError

__all__ = ["Operation", "check_request", "document", "methods_for", "resolve", "served"]

RESOURCE = "openapi.json"
_DIGITS = re.compile(r"[0-9]{1,10}")


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document shipped with the package (parsed once; do not mutate it)."""
    raw = resources.files("kopechka.testing").joinpath(RESOURCE).read_bytes()
    data: dict[str, Any] = json.loads(raw)
    return data


@functools.cache
def served(api_prefix: str) -> bytes:
    """The document as the sandbox serves it: its one server is the sandbox's own API root."""
    data = copy.deepcopy(document())
    data["servers"] = [{"url": api_prefix, "description": "This sandbox (relative to this file)"}]
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Operation:
    """One documented operation and what its requests must look like."""

    method: str
    template: str
    operation_id: str
    parameters: tuple[dict[str, Any], ...]
    body: dict[str, Any] | None


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@functools.cache
def _routes() -> tuple[tuple[re.Pattern[str], str], ...]:
    routes = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        routes.append((re.compile(pattern), template))
    return tuple(routes)


@functools.cache
def _operations() -> dict[tuple[str, str], Operation]:
    found = {}
    for template, item in document()["paths"].items():
        shared = [_deref(p) for p in item.get("parameters", [])]
        for method, spec in item.items():
            if method == "parameters":
                continue
            own = [_deref(p) for p in spec.get("parameters", [])]
            body = spec.get("requestBody")
            schema = _deref(body)["content"]["application/json"]["schema"] if body else None
            found[(method.upper(), template)] = Operation(
                method.upper(), template, spec["operationId"], tuple(shared + own), schema
            )
    return found


def resolve(path: str) -> tuple[str, dict[str, str]] | None:
    """The template ``path`` (below the API prefix, still percent-encoded) matches, and the path
    parameters decoded; ``None`` when no documented path matches."""
    for pattern, template in _routes():
        match = pattern.fullmatch(path)
        if match:
            return template, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def methods_for(template: str) -> list[str]:
    """The methods documented for a path template, in the document's order."""
    return [m for (m, t) in _operations() if t == template]


def operation(method: str, template: str) -> Operation | None:
    """The documented operation, or ``None`` when the method is not documented for the path."""
    return _operations().get((method, template))


def check_request(
    op: Operation, path_params: dict[str, str], query: dict[str, str], body: bytes
) -> tuple[dict[str, Any], Any]:
    """Check a request against its operation.

    Returns:
        The parameters converted to their types (absent optional ones left out), and the decoded
        body (``None`` for an operation without one).

    Raises:
        SandboxError: 400, naming what breaks the description.
    """
    values: dict[str, Any] = {}
    for param in op.parameters:
        source = path_params if param["in"] == "path" else query
        raw = source.get(param["name"])
        if raw is None:
            if param.get("required"):
                raise SandboxError(400, f"'{param['name']}' is required")
            continue
        values[param["name"]] = _convert(param["name"], raw, _deref(param["schema"]))
    if op.body is None:
        return values, None
    data = loads(body) if body.strip() else None
    if data is None:
        raise SandboxError(400, "Request body is required: a JSON object")
    if not isinstance(data, dict):
        raise SandboxError(400, "Request body must be a JSON object")
    validate(op.body, data, "body")
    return values, data


def _convert(name: str, raw: str, schema: dict[str, Any]) -> Any:
    if schema.get("type") == "integer":
        if not _DIGITS.fullmatch(raw):
            low, high = schema.get("minimum", 0), schema.get("maximum", 2**31 - 1)
            raise SandboxError(400, f"'{name}' must be an integer from {low} to {high}")
        value: Any = int(raw)
    else:
        value = raw
    validate(schema, value, name)
    return value


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "string": (str,), "integer": (int,), "boolean": (bool,), "array": (list,),
}  # fmt: skip


def validate(schema: dict[str, Any], value: Any, where: str) -> None:
    """Check ``value`` against the subset of JSON Schema the requests use.

    Raises:
        SandboxError: 400, naming ``where`` and what is wrong.
    """
    schema = _deref(schema)
    for part in schema.get("allOf", []):
        validate(part, value, where)
    kind = schema.get("type")
    if kind is not None:
        wrong_bool = isinstance(value, bool) and kind != "boolean"
        if wrong_bool or not isinstance(value, _TYPES.get(kind, object)):
            raise SandboxError(400, f"'{where}' must be of type {kind}")
    if isinstance(value, dict):
        _validate_object(schema, value)
    elif isinstance(value, str):
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if len(value) < low or (high is not None and len(value) > high):
            limit = f"{low} to {high}" if high is not None else f"at least {low}"
            raise SandboxError(400, f"'{where}' must be {limit} characters long")
    elif isinstance(value, int) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            raise SandboxError(400, f"'{where}' must be from {low} to {high}")


def _validate_object(schema: dict[str, Any], value: dict[str, Any]) -> None:
    for name in schema.get("required", []):
        if name not in value:
            raise SandboxError(400, f"Field '{name}' is required")
    for name, sub in schema.get("properties", {}).items():
        if name in value:
            validate(sub, value[name], name)
