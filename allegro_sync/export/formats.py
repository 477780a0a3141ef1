"""The export formats by name: how to encode rows and what to call the result."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from allegro_sync.export import customers_csv, customers_xml

Encoder = Callable[[AsyncIterable[Mapping[str, Any]]], AsyncGenerator[bytes, None]]


@dataclass(frozen=True)
class ExportFormat:
    """One file format of the customer export."""

    name: str
    content_type: str
    encode: Encoder

    @property
    def filename(self) -> str:
        """The file name offered for download."""
        return f"customers.{self.name}"


EXPORT_FORMATS: Mapping[str, ExportFormat] = MappingProxyType(
    {
        "csv": ExportFormat("csv", customers_csv.CONTENT_TYPE, customers_csv.customers_csv),
        "xml": ExportFormat("xml", customers_xml.CONTENT_TYPE, customers_xml.customers_xml),
    }
)
