"""Allegro's official OpenAPI spec (the part allegro-sync uses) and a validator for it.

The vendored file ``allegro-openapi-subset.yaml`` is cut from the full spec by
``scripts/cut_openapi.py``. The emulator checks request bodies against it (a body Allegro's
schema refuses gets Allegro's 422), and the e2e suite checks every exchange with it
(``contract.py``).

Schema rules (OpenAPI 3.0): ``$ref``, ``type``, ``nullable``, ``enum``, ``format``
(``date-time``, ``uuid``), bounds, lengths, ``pattern``, ``items``, ``properties``,
``required``, ``additionalProperties``, ``allOf`` / ``oneOf`` / ``anyOf`` and
``discriminator`` (also on a base schema that subschemas extend through ``allOf``). Allegro
always includes null fields in responses (allegro-api.md 1), so a null is accepted for a
property that is not required; a required property must be present, and non-null unless
``nullable``. ``strict`` also reports properties the schema does not describe.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import yaml

SUBSET_FILE = "allegro-openapi-subset.yaml"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class Violation:
    """One disagreement with the spec: where in the value, and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(body)'}: {self.message}"


@dataclass
class Operation:
    """One operation of the spec, with its parameters resolved."""

    method: str
    template: str
    spec: dict[str, Any]
    parameters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def responses(self) -> dict[str, Any]:
        result: dict[str, Any] = self.spec.get("responses") or {}
        return result

    @property
    def request_body(self) -> dict[str, Any] | None:
        body: dict[str, Any] | None = self.spec.get("requestBody")
        return body

    def response_media_types(self) -> set[str]:
        """Every media type the operation declares for any response."""
        return {
            media
            for response in self.responses.values()
            for media in (response.get("content") or {})
            if media != "*/*"
        }


class Spec:
    """The loaded document: operation lookup by method and concrete path, ``$ref`` resolution,
    schema validation."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._routes: list[tuple[re.Pattern[str], int, Operation]] = []
        for template, item in (document.get("paths") or {}).items():
            shared = item.get("parameters") or []
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            pattern = re.compile(
                "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            )
            for method, op in item.items():
                if method == "parameters":
                    continue
                own = op.get("parameters") or []
                by_key = {(p["name"], p["in"]): p for p in map(self.resolve, [*shared, *own])}
                operation = Operation(method.upper(), template, op, list(by_key.values()))
                self._routes.append((pattern, literal, operation))
        # literal segments beat parameters: /a/b wins over /a/{x}
        self._routes.sort(key=lambda r: -r[1])

    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation serving ``method path`` and its path parameters."""
        for pattern, _, op in self._routes:
            if op.method != method.upper():
                continue
            match = pattern.match(path)
            if match:
                return op, dict(match.groupdict())
        return None

    def path_known(self, path: str) -> bool:
        """Whether any operation (of any method) has this path."""
        return any(pattern.match(path) for pattern, _, _ in self._routes)

    def operations(self) -> Iterator[Operation]:
        """Every operation of the document."""
        for _, _, op in self._routes:
            yield op

    def resolve(self, node: Any) -> Any:
        """Follow ``$ref`` (within the document) until a node without one."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise ValueError(f"unsupported reference {ref!r}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
            seen += 1
            if seen > 50:
                raise ValueError(f"reference loop at {ref}")
        return node

    # -- schema validation ------------------------------------------------------------------

    def validate(
        self, schema: Any, value: Any, *, strict: bool = False, direction: str = "response"
    ) -> list[Violation]:
        """Violations of ``value`` against ``schema`` (empty when it conforms).
        ``direction`` is ``request`` or ``response`` (readOnly / writeOnly properties)."""
        out: list[Violation] = []
        self._check(schema, value, "", out, strict=strict, direction=direction, dispatched=())
        return out

    def _check(
        self,
        schema: Any,
        value: Any,
        path: str,
        out: list[Violation],
        *,
        strict: bool,
        direction: str,
        dispatched: tuple[int, ...],
        unknown_check: bool = True,
    ) -> None:
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or not schema:
            return
        if value is None:
            if not schema.get("nullable"):
                out.append(Violation(path, "null where the spec has no nullable"))
            return
        disc = schema.get("discriminator")
        if (
            disc
            and "oneOf" not in schema
            and "anyOf" not in schema
            and id(schema) not in dispatched
        ):
            target = self._discriminated(schema, value)
            if isinstance(target, str):
                out.append(Violation(_join(path, disc["propertyName"]), target))
                return
            if target is not None:
                self._check(
                    target,
                    value,
                    path,
                    out,
                    strict=strict,
                    direction=direction,
                    dispatched=(*dispatched, id(schema)),
                    unknown_check=unknown_check,
                )
                return
        for part in schema.get("allOf") or []:
            self._check(
                part,
                value,
                path,
                out,
                strict=strict,
                direction=direction,
                dispatched=dispatched,
                unknown_check=False,
            )
        for key in ("oneOf", "anyOf"):
            if key in schema:
                self._check_alternatives(
                    schema, key, value, path, out, strict=strict, direction=direction
                )
        kind = schema.get("type")
        if kind is not None and not _type_ok(kind, value):
            out.append(Violation(path, f"expected {kind}, got {_type_name(value)}"))
            return
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(map(str, schema["enum"][:12]))
            out.append(Violation(path, f"{value!r} is not one of [{allowed}]"))
        if isinstance(value, str):
            self._check_string(schema, value, path, out)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_number(schema, value, path, out)
        elif isinstance(value, list):
            if "minItems" in schema and len(value) < schema["minItems"]:
                out.append(Violation(path, f"fewer than {schema['minItems']} items"))
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(Violation(path, f"more than {schema['maxItems']} items"))
            items = schema.get("items")
            if items is not None:
                for i, item in enumerate(value):
                    self._check(
                        items,
                        item,
                        f"{path}[{i}]",
                        out,
                        strict=strict,
                        direction=direction,
                        dispatched=(),
                    )
        elif isinstance(value, dict):
            self._check_object(schema, value, path, out, strict, direction, unknown_check)

    def _check_object(
        self,
        schema: dict[str, Any],
        value: Mapping[str, Any],
        path: str,
        out: list[Violation],
        strict: bool,
        direction: str,
        unknown_check: bool,
    ) -> None:
        properties: dict[str, Any] = schema.get("properties") or {}
        for name in schema.get("required") or []:
            prop = self.resolve(properties.get(name, {}))
            skip = (direction == "request" and prop.get("readOnly")) or (
                direction == "response" and prop.get("writeOnly")
            )
            if name not in value and not skip:
                out.append(Violation(_join(path, name), "required property missing"))
        required = set(schema.get("required") or [])
        for name, sub in properties.items():
            if name not in value:
                continue
            if value[name] is None and name not in required:
                continue  # Allegro includes nulls for absent optional fields
            self._check(
                sub,
                value[name],
                _join(path, name),
                out,
                strict=strict,
                direction=direction,
                dispatched=(),
            )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in properties:
                    self._check(
                        extra,
                        item,
                        _join(path, name),
                        out,
                        strict=strict,
                        direction=direction,
                        dispatched=(),
                    )
        if strict and unknown_check:
            known = self.known_properties(schema)
            if known is not None:
                for name in value:
                    if name not in known:
                        out.append(Violation(_join(path, name), "property not in the spec"))

    def known_properties(self, schema: Any, depth: int = 0) -> set[str] | None:
        """Property names a schema describes (through allOf / oneOf / anyOf); None when it
        allows any. Discriminator mappings are not followed: a value is checked against the
        subtype its tag names, whose allOf brings the base's properties."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or depth > 20:
            return None
        if schema.get("additionalProperties") not in (None, False):
            return None
        names = set((schema.get("properties") or {}).keys())
        parts = [*schema.get("allOf", []), *schema.get("oneOf", []), *schema.get("anyOf", [])]
        for part in parts:
            sub = self.known_properties(part, depth + 1)
            if sub is None:
                return None
            names |= sub
        if not names and schema.get("type") in (None, "object") and not parts:
            return None  # a free-form object
        return names

    def _discriminated(self, schema: dict[str, Any], value: Any) -> dict[str, Any] | str | None:
        if not isinstance(value, dict):
            return None
        disc = schema["discriminator"]
        tag = value.get(disc["propertyName"])
        if tag is None:
            return None  # reported as a missing required property
        mapping = disc.get("mapping") or {}
        ref = mapping.get(str(tag))
        if ref is None:
            candidate = f"#/components/schemas/{tag}"
            schemas = (self.document.get("components") or {}).get("schemas") or {}
            if str(tag) in schemas:
                ref = candidate
        if ref is None:
            allowed = ", ".join(mapping) or "(none)"
            return f"{tag!r} is not one of [{allowed}]"
        resolved: dict[str, Any] = self.resolve({"$ref": ref})
        return resolved

    def _check_alternatives(
        self,
        schema: dict[str, Any],
        key: str,
        value: Any,
        path: str,
        out: list[Violation],
        *,
        strict: bool,
        direction: str,
    ) -> None:
        disc = schema.get("discriminator")
        if disc:
            target = self._discriminated({"discriminator": disc}, value)
            if isinstance(target, str):
                out.append(Violation(_join(path, disc["propertyName"]), target))
                return
            if target is not None:
                self._check(
                    target, value, path, out, strict=strict, direction=direction, dispatched=()
                )
                return
        first: list[Violation] | None = None
        for option in schema[key]:
            found: list[Violation] = []
            self._check(
                option, value, path, found, strict=strict, direction=direction, dispatched=()
            )
            if not found:
                return
            if first is None:
                first = found
        out.append(Violation(path, f"matches none of {key}"))
        out.extend(first or [])

    def _check_string(
        self, schema: dict[str, Any], value: str, path: str, out: list[Violation]
    ) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(Violation(path, f"shorter than {schema['minLength']} characters"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(Violation(path, f"longer than {schema['maxLength']} characters"))
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not re.search(pattern, value):
            out.append(Violation(path, f"does not match {pattern}"))
        fmt = schema.get("format")
        if fmt == "date-time" and not _is_date_time(value):
            out.append(Violation(path, f"{value!r} is not an ISO 8601 date-time"))
        elif fmt == "uuid":
            try:
                uuid.UUID(value)
            except ValueError:
                out.append(Violation(path, f"{value!r} is not a UUID"))


def _check_number(schema: dict[str, Any], value: float, path: str, out: list[Violation]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and (
        value < low or (schema.get("exclusiveMinimum") is True and value == low)
    ):
        out.append(Violation(path, f"{value} is below the minimum {low}"))
    if high is not None and (
        value > high or (schema.get("exclusiveMaximum") is True and value == high)
    ):
        out.append(Violation(path, f"{value} is above the maximum {high}"))


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    names.update({list: "array", dict: "object"})
    return names.get(type(value), type(value).__name__)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@functools.cache
def subset() -> Spec:
    """The vendored subset, parsed once per process."""
    text = resources.files(__package__).joinpath(SUBSET_FILE).read_bytes()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Spec(yaml.load(text, Loader=loader))  # noqa: S506 - a safe loader
