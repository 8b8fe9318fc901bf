"""Checks responses against BigCommerce's published OpenAPI files (Orders V2 and V3, Webhooks V3).

The files are OpenAPI 3.0: their schemas are JSON Schema draft 4 plus `nullable`. This module
loads a file, rewrites each schema into plain draft 4 (`nullable: true` adds `null` to the
type) and validates a response body against the schema of the operation and status it answers,
resolving `$ref` within the file. Two rewrites are deliberate and documented here:

* `oneOf` is read as `anyOf`. The spec's `oneOf` alternatives overlap: `consignments` is
  `oneOf [orderConsignments_Resource, orderConsignment_Get]`, both objects without required
  properties, so every object matches both and strict `oneOf` would reject every response,
  including the spec's own examples. The same holds for consignment `line_items`.
* A status the operation does not document is a failure, and so is a body on a 204; a 204
  that only the operation's description mentions (shipping quotes: "return a 204") counts.

Orders V3 and Webhooks V3 share the `/v3` prefix; a path is routed by what follows it:
`/v3/hooks...` to webhooks.v3.yml, every other `/v3/...` to orders.v3.yml (`locate`). One
constraint of webhooks.v3.yml is dropped (`_RELAXED`): its Get Webhooks response says `data`
has `minItems: 1`, yet an API account without hooks is answered with an empty `data` list
(the list filters by `is_active`, `scope` and `destination` can match nothing), so an empty
list is a valid answer there.

Needs `jsonschema` and `PyYAML` (requirements-dev.txt); the files live in the shared folder
beside the checkout (`../shared/specs/bigcommerce/reference/`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs" / "bigcommerce" / "reference"
FILES = {"v2": "orders.v2.oas2.yml", "v3": "orders.v3.yml", "webhooks": "webhooks.v3.yml"}
_SKIP = {"example", "examples", "x-examples", "description"}
# Spec keywords removed after loading (see the module docstring): file -> JSON pointers.
_RELAXED = {
    "webhooks": (
        "/components/responses/webhooks_Resp/content/application~1json/schema/properties/data"
        "/minItems",
    ),
}


class NonConformance(AssertionError):
    """A response that the official spec does not allow."""


def _draft4(node: Any) -> Any:
    if isinstance(node, list):
        return [_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: (value if key in _SKIP else _draft4(value)) for key, value in node.items()}
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    if out.pop("nullable", False) is True and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    responses: dict[str, Any]
    description: str = ""


class Spec:
    def __init__(self, version: str, directory: Path = SPECS) -> None:
        self.version = version
        self.uri = f"urn:bigcommerce:{version}"
        path = directory / FILES[version]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: the official BigCommerce spec is missing; the shared folder with "
                "specs/bigcommerce/reference/ must sit beside the checkout"
            )
        with path.open(encoding="utf-8") as handle:
            self.document: dict[str, Any] = _draft4(yaml.safe_load(handle))
        for pointer in _RELAXED.get(version, ()):
            parent, _, key = pointer.rpartition("/")
            self._at(parent).pop(key)
        resource = DRAFT4.create_resource(self.document)
        self.registry: Registry[Any] = Registry().with_resource(self.uri, resource)
        self._paths = sorted(
            (
                (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                for path in self.document["paths"]
            ),
            key=lambda pair: pair[1].count("{"),  # literal segments win: /orders/count
        )

    def operation(self, method: str, path: str) -> Operation:
        for pattern, template in self._paths:
            if pattern.match(path):
                item = self.document["paths"][template]
                if method.lower() in item:
                    operation = item[method.lower()]
                    return Operation(
                        template,
                        method,
                        operation.get("responses", {}),
                        operation.get("description", ""),
                    )
        raise NonConformance(f"{method} {path}: no such operation in {FILES[self.version]}")

    def schema_pointer(self, method: str, path: str, status: int) -> str | None:
        """Where the response schema sits in the file, or None when the status has no body."""
        operation = self.operation(method, path)
        response = operation.responses.get(str(status))
        if response is None and status == 204 and "204" in operation.description:
            return None  # a No Content answer the operation's description documents in prose
        if response is None:
            raise NonConformance(
                f"{method} {operation.path}: status {status} is not documented "
                f"(documented: {', '.join(sorted(operation.responses))})"
            )
        pointer = "/" + "/".join(
            _escape(part) for part in ("paths", operation.path, method.lower(), "responses")
        )
        pointer += f"/{status}"
        while "$ref" in response:
            pointer = response["$ref"].removeprefix("#")
            response = self._at(pointer)
        body = (response.get("content") or {}).get("application/json")
        if not body or "schema" not in body:
            return None
        return pointer + "/content/application~1json/schema"

    def _at(self, pointer: str) -> Any:
        node: Any = self.document
        for part in pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validate(self, method: str, path: str, status: int, body: bytes) -> None:
        pointer = self.schema_pointer(method, path, status)
        if status == 204 or pointer is None:
            if body.strip():
                raise NonConformance(f"{method} {path}: {status} must have no body")
            return
        instance = json.loads(body)
        validator = Draft4Validator({"$ref": f"{self.uri}#{pointer}"}, registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=str)
        if errors:
            raise NonConformance(_describe(method, path, status, errors))

    def validate_request(self, method: str, path: str, body: Any) -> None:
        """Checks a request body against the operation's `requestBody` schema."""
        operation = self.operation(method, path)
        pointer = "/" + "/".join(
            _escape(part)
            for part in ("paths", operation.path, method.lower(), "requestBody", "content")
        )
        content = self._at(pointer)
        if "application/json" not in content:
            raise NonConformance(f"{method} {operation.path} takes no JSON body")
        schema = {"$ref": f"{self.uri}#{pointer}/application~1json/schema"}
        errors = sorted(Draft4Validator(schema, registry=self.registry).iter_errors(body), key=str)
        if errors:
            raise NonConformance(_describe(method, path, 0, errors))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _describe(method: str, path: str, status: int, errors: list[ValidationError]) -> str:
    lines = [f"{method} {path} -> {status}: {len(errors)} schema violation(s)"]
    for error in errors[:10]:
        where = "/".join(str(p) for p in error.absolute_path) or "(body)"
        lines.append(f"  at {where}: {error.message[:300]}")
    return "\n".join(lines)


@cache
def spec(version: str) -> Spec:
    return Spec(version)


_HOOKS = re.compile(r"^/hooks(/.*)?$")


def locate(url_path: str) -> tuple[Spec, str]:
    """The spec that documents `/stores/{hash}/v2|v3/...`, and the path as that file writes it."""
    match = re.match(r"^/stores/[^/]+/(v2|v3)(/.*)$", url_path)
    if match is None:
        raise NonConformance(f"{url_path} is not a store API path")
    version, path = match.group(1), match.group(2)
    if version == "v3" and _HOOKS.match(path):
        return spec("webhooks"), path
    return spec(version), path


_split = locate


def check(method: str, url_path: str, status: int, body: bytes) -> None:
    """Validates one response to `/stores/{hash}/v2|v3/...` against the official spec."""
    the_spec, path = locate(url_path)
    the_spec.validate(method, path, status, body)


def check_request(method: str, url_path: str, body: Any) -> None:
    """Validates a request body for `/stores/{hash}/v2|v3/...` against the official spec."""
    the_spec, path = locate(url_path)
    the_spec.validate_request(method, path, body)
