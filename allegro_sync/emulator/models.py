"""The marketplace's records. Plain dataclasses; the HTTP modules render them as Allegro JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

JsonDict = dict[str, Any]


@dataclass
class Seller:
    """A seller account (a user who can authorise apps)."""

    id: str
    login: str
    sandbox: bool
    first_name: str
    last_name: str
    email: str
    company_name: str | None
    tax_id: str | None
    extra_emails: list[str]
    created_at: datetime
    blocked: bool = False
    return_policies: list[JsonDict] = field(default_factory=list)
    implied_warranties: list[JsonDict] = field(default_factory=list)
    warranties: list[JsonDict] = field(default_factory=list)
    shipping_rates: list[JsonDict] = field(default_factory=list)


@dataclass
class Offer:
    """A seller's offer. ``status`` is INACTIVE, ACTIVATING, ACTIVE or ENDED."""

    id: str
    seller_id: str
    name: str
    format: str
    status: str
    stock: int
    price: Decimal
    currency: str
    image_url: str | None
    external_id: str | None
    ean: str | None
    category_id: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    # True once the offer answers 404: archived 60 days after ending, or a deleted draft.
    archived: bool = False
    starting_at: datetime | None = None
    sales: list[tuple[datetime, int]] = field(default_factory=list)
    # What POST /sale/product-offers set beyond the fields above (catalogue product, offer
    # parameters, images, description, after-sales ids, shipping rates, location, GPSR, tax);
    # empty for offers made otherwise. A PATCH sets ``images``, ``description`` and
    # ``product_parameters`` (``productSet[0].product.parameters`` besides the EAN) here too.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class OfferOperation:
    """An accepted (202) ``PATCH /sale/product-offers/{id}`` that finishes at ``done_at``."""

    id: str
    offer_id: str
    seller_id: str
    started_at: datetime
    done_at: datetime
    completed_at: datetime | None = None


@dataclass
class Buyer:
    """The buyer side of a checkout form, fixed at purchase time."""

    id: str
    login: str
    email: str
    first_name: str
    last_name: str
    company_name: str | None
    nip: str | None
    invoice_required: bool
    guest: bool
    phone: str
    street: str
    city: str
    zip_code: str
    country_code: str
    pickup_point: bool
    language: str
    # typed ids of invoice.address.company.ids[] ([] = derived from nip and the country) and
    # the deprecated free-text taxId (None = the nip)
    tax_ids: list[dict[str, str]] = field(default_factory=list)
    tax_id_text: str | None = None
    # invoice.address.company.vatPayerStatus (None: ACTIVE with a tax id, else NOT_APPLICABLE)
    vat_payer_status: str | None = None


@dataclass
class LineItem:
    """One bought offer inside a checkout form."""

    id: str
    offer_id: str
    offer_name: str
    external_id: str | None
    quantity: int
    price: Decimal
    currency: str
    bought_at: datetime
    # the price before the line's discounts (None: no discount, the price itself), the line's
    # tax ({rate, subject, exemption} or None), discount types and vouchers (spec's JSON)
    original_price: Decimal | None = None
    tax: dict[str, str | None] | None = None
    discounts: list[str] = field(default_factory=list)
    vouchers: list[JsonDict] = field(default_factory=list)


@dataclass
class CheckoutForm:
    """An order. ``status`` follows BOUGHT -> FILLED_IN -> READY_FOR_PROCESSING, or CANCELLED."""

    id: str
    seller_id: str
    buyer: Buyer
    line_items: list[LineItem]
    payment_type: str
    payment_id: str
    delivery_method: tuple[str, str]
    delivery_cost: Decimal
    created_at: datetime
    updated_at: datetime
    status: str = "BOUGHT"
    filled_in: bool = False
    paid_at: datetime | None = None
    fulfillment_status: str = "NEW"
    revision_counter: int = 0
    revision: str = ""
    message_to_seller: str | None = None
    superseded_by: str | None = None
    invoices: list[Invoice] = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)
    stock_returned: bool = False
    smart: bool = False
    # a surcharge the buyer paid on top (None: none), shown once the form is paid
    surcharge: Decimal | None = None
    surcharge_id: str | None = None


@dataclass
class Invoice:
    """A seller invoice attached to a checkout form."""

    id: str
    checkout_form_id: str
    invoice_number: str
    file_name: str
    created_at: datetime
    uploaded_at: datetime | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass
class Shipment:
    """A parcel tracking number on a checkout form (``lineItems``: ids; all of them when the
    seller named none)."""

    id: str
    waybill: str
    carrier_id: str
    carrier_name: str | None
    line_item_ids: list[str]
    created_at: datetime


@dataclass
class Task:
    """One offer inside a batch command."""

    offer_id: str
    field_name: str
    status: str = "NEW"
    message: str | None = None
    errors: list[JsonDict] = field(default_factory=list)
    scheduled_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class Command:
    """A batch command (price, quantity or publication) and its report."""

    kind: str
    id: str
    seller_id: str
    client_id: str
    body: JsonDict
    created_at: datetime
    tasks: list[Task]
    completed_at: datetime | None = None


@dataclass
class TokenGrant:
    """One authorisation of a client by a seller; refreshes rotate tokens inside it."""

    id: str
    client_id: str
    seller_id: str | None
    scopes: tuple[str, ...]
    current_access: str | None = None


@dataclass
class AccessToken:
    """An issued access token."""

    token: str
    grant: TokenGrant
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    """An issued refresh token; ``used_at`` starts the grace period."""

    token: str
    grant: TokenGrant
    expires_at: float
    access_token: str
    used_at: float | None = None
    revoked: bool = False
