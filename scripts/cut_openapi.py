"""Cut the part of Allegro's official OpenAPI spec that allegro-sync uses.

Keeps every operation the client calls or the emulator serves (``OPERATIONS`` below; a test
checks that the emulator serves nothing outside it), with the components they reference,
transitively, and writes ``allegro_sync/emulator/allegro-openapi-subset.yaml`` with a header
naming the source, its date and the sha256 of the full spec. The emulator validates request
bodies against that file, and the e2e suite validates every exchange against it.

    python scripts/cut_openapi.py path/to/full-spec.yaml [--out FILE] [--check]

``--check`` writes nothing and exits 1 when the vendored file differs from a fresh cut.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import yaml

SOURCE = (
    "https://developer.allegro.pl/swagger.yaml (snapshot of 2026-07-18 from the public "
    "repository em411/allegro-php-api, path resources/spec.yaml, commit "
    "bf03f601d526280fcdeed22459b9140921cb5b61)"
)
SNAPSHOT_DATE = "2026-07-18"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / (
    "allegro_sync/emulator/allegro-openapi-subset.yaml"
)

_COMMANDS = (
    "offer-price-change-commands",
    "offer-quantity-change-commands",
    "offer-publication-commands",
)
_AFTER_SALES = (
    ("return-policies", "returnPolicyId"),
    ("implied-warranties", "impliedWarrantyId"),
    ("warranties", "warrantyId"),
)

# (method, path template as in the spec)
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("get", "/me"),
    ("get", "/account/additional-emails"),
    *(
        op
        for kind, param in _AFTER_SALES
        for op in (
            ("get", f"/after-sales-service-conditions/{kind}"),
            ("get", f"/after-sales-service-conditions/{kind}/{{{param}}}"),
        )
    ),
    ("get", "/sale/shipping-rates"),
    ("get", "/sale/shipping-rates/{id}"),
    ("get", "/sale/categories"),
    ("get", "/sale/categories/{categoryId}"),
    ("get", "/sale/categories/{categoryId}/parameters"),
    ("get", "/order/events"),
    ("get", "/order/event-stats"),
    ("post", "/messaging/messages"),
    ("get", "/order/checkout-forms"),
    ("get", "/order/checkout-forms/{id}"),
    ("put", "/order/checkout-forms/{id}/fulfillment"),
    ("get", "/order/checkout-forms/{id}/invoices"),
    ("post", "/order/checkout-forms/{id}/invoices"),
    ("put", "/order/checkout-forms/{id}/invoices/{invoiceId}/file"),
    ("get", "/order/carriers"),
    ("get", "/order/carriers/{carrierId}/tracking"),
    ("get", "/order/checkout-forms/{id}/shipments"),
    ("post", "/order/checkout-forms/{id}/shipments"),
    ("get", "/shipment-management/delivery-services"),
    ("post", "/shipment-management/shipments/create-commands"),
    ("get", "/shipment-management/shipments/create-commands/{commandId}"),
    ("post", "/shipment-management/shipments/cancel-commands"),
    ("get", "/shipment-management/shipments/cancel-commands/{commandId}"),
    ("get", "/shipment-management/shipments/{shipmentId}"),
    ("post", "/shipment-management/label"),
    ("post", "/shipment-management/protocol"),
    ("post", "/shipment-management/pickup-proposals"),
    ("post", "/shipment-management/pickups/create-commands"),
    ("get", "/shipment-management/pickups/create-commands/{commandId}"),
    ("get", "/sale/offers"),
    ("get", "/sale/products"),
    ("get", "/sale/products/{productId}"),
    ("post", "/sale/images"),
    ("get", "/sale/offer-events"),
    ("post", "/sale/product-offers"),
    ("get", "/sale/product-offers/{offerId}"),
    ("patch", "/sale/product-offers/{offerId}"),
    ("get", "/sale/product-offers/{offerId}/operations/{operationId}"),
    *(
        op
        for kind in _COMMANDS
        for op in (
            ("put", f"/sale/{kind}/{{commandId}}"),
            ("get", f"/sale/{kind}/{{commandId}}"),
            ("get", f"/sale/{kind}/{{commandId}}/tasks"),
        )
    ),
)


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        mapping = (node.get("discriminator") or {}).get("mapping")
        if isinstance(mapping, dict):  # discriminator targets are references too
            found.update(v for v in mapping.values() if isinstance(v, str))
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise SystemExit(f"external reference not supported: {ref}")
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def cut(spec: dict[str, Any]) -> dict[str, Any]:
    """The subset: the listed operations and every component they reach."""
    paths: dict[str, Any] = {}
    for method, template in OPERATIONS:
        item = spec["paths"].get(template)
        if item is None or method not in item:
            raise SystemExit(f"{method.upper()} {template} is not in the spec")
        kept = paths.setdefault(template, {})
        if "parameters" in item:
            kept["parameters"] = item["parameters"]
        kept[method] = item[method]
    seen: set[str] = set()
    todo: set[str] = set()
    _refs(paths, todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        found: set[str] = set()
        _refs(_resolve(spec, ref), found)
        todo |= found - seen
    components: dict[str, Any] = {}
    for ref in sorted(seen):
        _, _, section, name = ref.split("/", 3)
        components.setdefault(section, {})[name] = _resolve(spec, ref)
    security = spec.get("components", {}).get("securitySchemes")
    if security:
        components["securitySchemes"] = security
    ordered_paths = {p: paths[p] for p in sorted(paths)}
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec.get("servers", []),
        "paths": ordered_paths,
        "components": {k: components[k] for k in sorted(components)},
    }


def render(full_text: bytes) -> str:
    """The vendored file's text for a full spec's bytes."""
    spec = yaml.load(full_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    subset = cut(spec)
    digest = hashlib.sha256(full_text).hexdigest()
    operations = sum(1 for item in subset["paths"].values() for k in item if k != "parameters")
    header = (
        "# The part of Allegro's official OpenAPI spec that allegro-sync uses: every operation\n"
        "# the client calls or the emulator serves, with the components they reference.\n"
        f"# Source: {SOURCE}\n"
        f"# Snapshot date: {SNAPSHOT_DATE}\n"
        f"# sha256 of the full spec: {digest}\n"
        f"# Operations: {operations}; schemas: {len(subset['components'].get('schemas', {}))}\n"
        "# Generated by scripts/cut_openapi.py; do not edit by hand: cut it again.\n"
    )
    body = yaml.safe_dump(subset, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the full spec (YAML)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    text = render(args.spec.read_bytes())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} differs from a fresh cut of {args.spec}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
