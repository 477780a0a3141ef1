"""State of Allegro's shipment management ("Wysyłam z Allegro"): commands, parcels, pickups."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ParcelCommand:
    """An asynchronous command (create, cancel, pickup): ``IN_PROGRESS`` until ``ready_at`` and
    at least one read of its status, then ``SUCCESS`` (``result_id``) or ``ERROR``."""

    id: str
    seller_id: str
    kind: str  # "create" | "cancel" | "pickup"
    body: dict[str, Any]
    ready_at: datetime
    errors: list[dict[str, Any]] = field(default_factory=list)
    result_id: str | None = None
    extra_id: str | None = None  # a pickup's carrier id
    reads: int = 0


@dataclass
class Parcel:
    """A shipment made by a create command."""

    id: str
    seller_id: str
    command_id: str
    input: dict[str, Any]
    carrier: str
    waybills: list[str]
    created_at: datetime
    cancelled_at: datetime | None = None
    pickup_id: str | None = None


@dataclass
class ParcelDesk:
    """Every command (by id) and parcel (by id) of one emulator."""

    commands: dict[str, ParcelCommand] = field(default_factory=dict)
    parcels: dict[str, Parcel] = field(default_factory=dict)
    pickups: dict[str, list[str]] = field(default_factory=dict)
    label_requests: int = 0
