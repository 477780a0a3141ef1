"""The message contract: every message the daemon consumes or publishes (design.md section 4).

One pydantic model per routing key, all on one base (``Message``), and the routing keys as named
constants. Three exchanges carry them (``adapters/broker/topology.py`` names them):

- ``erp.events``: the ERP publishes, the daemon consumes (``ERP_MESSAGES``);
- ``allegro-sync.journal``: the daemon's pollers publish what Allegro's journals say, its
  consumers read it (``JOURNAL_MESSAGES``); only messages signed by the daemon itself are taken
  (``adapters/broker/signing.py``);
- ``allegro-sync.events``: the daemon publishes for the ERP (``EVENTS``).

``docs/asyncapi.json`` is generated from this module (``python scripts/asyncapi.py``) and a test
checks that it still matches. Consumed bodies are parsed straight from JSON
(``model_validate_json``); published ones are built on the models and sent as ``body()``.

``message_id`` (an AMQP property, required): the idempotency key of a consumed message, unique
per message type (routing key). A message whose type and id were already handled is a
redelivery and is dropped; so a retry of the same message reuses its id, and every new message
(another fact, or a newer value of the same one) needs an id of its own, such as
``stock:<product>:<version>``. The same id under two types names two messages.

Bounds: the ERP's text fields hold no control character (an ``order.message`` body may break
lines), numbers are JSON integers within their column's range (never ``true`` or ``"12"``), a
price is a JSON string ``"12.34"`` greater than 0, a file name has no path separator. A message
over its size limit (``MAX_MESSAGE_BYTES``, ``MAX_INVOICE_MESSAGE_BYTES``) is refused before
its JSON is parsed.

Journal runs: a poller publishes a journal page's events in runs (``{"account_id", "events":
[...]}``, each event carrying the extra fields its journal adds, such as the checkout form).
When a run fails, the consumer replaces it by one message per event (``run_splitter``): the
single-event message (``{"account_id", "event", **extras}``) whose id is the event's own
(``<journal>-event:<account>:<event id>``), so that a failing event holds up none of the others
and a part handled once is a no-op the next time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_serializer,
    model_validator,
)

# --- routing keys ---------------------------------------------------------------------------

# erp.events
PRODUCT_UPSERTED = "product.upserted"
STOCK_CHANGED = "stock.changed"
PRICE_CHANGED = "price.changed"
PRICE_LIST_UPSERTED = "price_list.upserted"
ORDER_STATUS_CHANGED = "order.status_changed"
INVOICE_ADDED = "invoice.added"
ORDER_MESSAGE = "order.message"
SHIPMENT_ADDED = "shipment.added"
OFFER_LIST = "offer.list"
SHIPMENT_REQUESTED = "shipment.requested"
SHIPMENT_CANCEL = "shipment.cancel"
# allegro-sync.journal
ORDER_EVENTS = "allegro.order_events"
ORDER_EVENT = "allegro.order_event"
ORDER_BACKFILL = "allegro.order_backfill"
OFFER_EVENTS = "allegro.offer_events"
OFFER_EVENT = "allegro.offer_event"
OFFER_TOUCHED = "allegro.offer_touched"
# allegro-sync.events
ORDER_CREATED = "order.created"
ORDER_CANCELLED = "order.cancelled"
OFFER_BOUND = "offer.bound"
OFFER_LISTED = "offer.listed"
OFFER_LIST_FAILED = "offer.list_failed"
ACCOUNT_DISABLED = "account.disabled"
OFFER_UPDATE_FAILED = "offer.update_failed"
SHIPMENT_CREATED = "shipment.created"
SHIPMENT_FAILED = "shipment.failed"
SHIPMENT_CANCELLED = "shipment.cancelled"
SHIPMENT_STATUS_CHANGED = "shipment.status_changed"

# Text of the ERP's messages holds no control character (C0, DEL, C1): a NUL is refused by
# PostgreSQL, a CR or LF would end up in a header, a file name or a log line. As a pattern, so
# that the AsyncAPI document says it too.
NO_CONTROL = r"^[^\x00-\x1F\x7F-\x9F]*$"
# Free text (an ``order.message`` body) may break lines and hold tabs, nothing else.
NO_CONTROL_BUT_LINES = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
# The columns' ranges: PostgreSQL ``integer`` and ``bigint``.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


def _refusing(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise ValueError(f"holds a control character{what}")
        return value

    return check


_ONE_LINE = AfterValidator(_refusing(NO_CONTROL, ""))
_ONE_LINE_DOC = Field(json_schema_extra={"pattern": NO_CONTROL})
# One line of text: surrounding blanks stripped, no control character (the pattern is for the
# AsyncAPI document; the check gives the reason).
Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    _ONE_LINE,
    _ONE_LINE_DOC,
]
Text = Id
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, strip_whitespace=True),
    _ONE_LINE,
    _ONE_LINE_DOC,
]
Url = Annotated[str, StringConstraints(max_length=2000), _ONE_LINE, _ONE_LINE_DOC]
Status = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True),
    _ONE_LINE,
    _ONE_LINE_DOC,
]
Ean = Annotated[str, StringConstraints(pattern=r"^\d{8,14}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# Numbers where the contract has a JSON number: a JSON integer, never ``true`` or ``"12"`` or
# ``1e20``, within the range of the column that stores it.
Quantity = Annotated[int, Strict(), Field(ge=0, le=INT4_MAX)]
Version = Annotated[int, Strict(), Field(ge=0, le=INT8_MAX)]
# A price is a JSON string of a decimal amount with at most two decimals ("12.34"): a JSON
# number cannot carry cents exactly. Greater than 0, below 10^12 (the column's numeric(14, 2)).
PRICE_PATTERN = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$"


def _price_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError('a price is a JSON string such as "12.34", not a number')
    if re.fullmatch(PRICE_PATTERN, value) is None:
        raise ValueError('a price is an amount such as "12.34": digits, at most two decimals')
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_price_text),
    Field(gt=0, max_digits=14, decimal_places=2),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PRICE_PATTERN,
            "examples": ["12.34"],
            "description": "An amount greater than 0 with at most two decimals, as a JSON"
            " string; in the currency of the offers it is set on.",
        },
        mode="validation",
    ),
]


FILE_NAME_PATTERN = r"^[^\x00-\x1F\x7F-\x9F/\\]*$"


def _plain_file_name(value: str) -> str:
    if re.fullmatch(FILE_NAME_PATTERN, value) is None:
        raise ValueError("holds a control character or a path separator (/ or \\)")
    if value in (".", ".."):
        raise ValueError("names a directory, not a file")
    return value


# A file name as Allegro shows it to the buyer: no directory part, no control character.
FileName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    AfterValidator(_plain_file_name),
    Field(json_schema_extra={"pattern": FILE_NAME_PATTERN}),
]
# Allegro takes invoice files up to 3 MB (it answers 413 above); in base64 that is at most
# ``INVOICE_BASE64_CHARS`` characters, plus the line breaks of MIME's 76-character lines.
INVOICE_MAX_BYTES = 3 * 1024 * 1024
INVOICE_BASE64_CHARS = 4 * -(-INVOICE_MAX_BYTES // 3)
INVOICE_BASE64_MAX_CHARS = INVOICE_BASE64_CHARS + 2 * -(-INVOICE_BASE64_CHARS // 76)
OfferId = Annotated[str, Field(min_length=1, max_length=100)]
EmailAddress = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"
    ),
]
# design.md C4: the customer type of a customer card, from its country
CustomerType = Literal["domestic", "intra_eu", "extra_eu"]
CUSTOMER_TYPES: tuple[CustomerType, ...] = ("domestic", "intra_eu", "extra_eu")


class Message(BaseModel):
    """Base of every message: unknown fields are ignored, numbers may name ids."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    def body(self) -> dict[str, Any]:
        """The JSON object that goes on the wire."""
        return self.model_dump(mode="json")


# Parsed without turning numbers into text, or also by field name, as these were before the
# contract had one base: widening what is accepted is a change of the contract, not of its layout.
_NO_COERCION = ConfigDict(coerce_numbers_to_str=False)
_BY_NAME = ConfigDict(populate_by_name=True)
# A field named ``from`` (a Python keyword): ``from_`` in code, ``from`` on the wire.
_FROM_TO = ConfigDict(populate_by_name=True, serialize_by_alias=True)


# --- erp.events -----------------------------------------------------------------------------


# What a product carries for listing it on Allegro (``offer.list``), in Allegro's own limits:
# a description of at most 40 000 bytes (spec ``StandardizedDescription``), at most 16 images,
# safety information of at most 5 000 characters (``TextSafetyInformation``).
DESCRIPTION_MAX_BYTES = 40_000
PRODUCT_IMAGES_MAX = 16
HttpsUrl = Annotated[
    str,
    StringConstraints(
        min_length=9, max_length=2000, strip_whitespace=True, pattern=r"^https://\S+$"
    ),
]
ParameterValue = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), _ONE_LINE, _ONE_LINE_DOC
]


class DescriptionText(Message):
    """A text item of a description section: HTML of Allegro's few tags (p, h1, h2, ul, ol, li,
    b), checked by Allegro when the offer is listed."""

    type: Literal["TEXT"]
    content: Annotated[str, StringConstraints(min_length=1, max_length=DESCRIPTION_MAX_BYTES)]


class DescriptionImage(Message):
    """An image item of a description section."""

    type: Literal["IMAGE"]
    url: HttpsUrl


class DescriptionSection(Message):
    """One row of a description: one or two items."""

    items: list[Annotated[DescriptionText | DescriptionImage, Field(discriminator="type")]] = Field(
        min_length=1, max_length=2
    )


class Description(Message):
    """A description in Allegro's sections (``StandardizedDescription``)."""

    sections: list[DescriptionSection] = Field(min_length=1, max_length=100)


class ProductParameter(Message):
    """A product parameter: Allegro's parameter id, or its name, and the values."""

    id: Id | None = None
    name: Name | None = None
    values: list[ParameterValue] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _named(self) -> ProductParameter:
        if self.id is None and self.name is None:
            raise ValueError("a parameter needs its Allegro id or its name")
        return self


class SafetyInformation(Message):
    """GPSR safety information as text (Allegro's ``TextSafetyInformation``)."""

    type: Literal["TEXT"]
    description: Annotated[
        str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)
    ]


class TaxRate(Message):
    """A VAT rate for a country (``"23.00"``, ``PL``)."""

    model_config = _NO_COERCION

    rate: Annotated[str, StringConstraints(pattern=r"^(100|[0-9]{1,2})(\.[0-9]{1,2})?$")]
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class TaxSettings(Message):
    """An offer's tax settings (Allegro's ``OfferTaxSettings``)."""

    rates: list[TaxRate] = Field(min_length=1, max_length=30)
    subject: Status | None = None
    exemption: Status | None = None


class ProductUpserted(Message):
    """``product.upserted``: the ERP created or changed a product.

    Beyond the id, EAN and name, a product may carry what listing it on Allegro needs
    (``offer.list``): ``description`` (plain text, or Allegro's sections), ``images`` (https
    URLs, the first is the main image), ``parameters`` (by Allegro's id or name),
    ``category_id``, ``responsible_producer_id`` (GPSR: the id of a responsible producer set
    up on the seller's Allegro account), ``safety_information`` and ``tax_settings``. A field
    the message leaves out keeps its stored value (an ERP that sends only the first four
    fields changes nothing else); null clears it. ``image_url`` is the older single image,
    taken as ``images`` when ``images`` is left out."""

    product_id: Id
    ean: Ean | None
    name: Name
    image_url: Url | None = None
    description: (
        Annotated[str, StringConstraints(min_length=1, max_length=DESCRIPTION_MAX_BYTES)]
        | Description
        | None
    ) = None
    images: list[HttpsUrl] | None = Field(default=None, max_length=PRODUCT_IMAGES_MAX)
    parameters: list[ProductParameter] | None = Field(default=None, max_length=200)
    category_id: Id | None = None
    responsible_producer_id: Id | None = None
    safety_information: SafetyInformation | None = None
    tax_settings: TaxSettings | None = None


class StockChanged(Message):
    """``stock.changed``: the ERP stock of a product; ``version`` grows per product."""

    product_id: Id
    quantity: Quantity
    version: Version


class PriceChanged(Message):
    """``price.changed``: a product's price in one price list."""

    product_id: Id
    price_list: Id
    price: Price
    currency: Currency
    version: Version


class OfferList(Message):
    """``offer.list``: list the product on the account (``POST /sale/product-offers``), Buy Now
    at ``price`` with ``quantity`` in stock; ``category_id`` null takes the product's category,
    else the account's default; ``publish`` false makes a draft (INACTIVE). Idempotent by
    (product, account): one offer however often it is sent; a product that already has a live
    offer bound on the account is not listed again (``offer.listed`` names that offer)."""

    model_config = _NO_COERCION

    product_id: Id
    account_id: Annotated[int, Strict(), Field(ge=1, le=INT8_MAX)]
    price: Price
    currency: Currency
    quantity: Quantity
    category_id: Id | None = None
    publish: StrictBool


class PriceListUpserted(Message):
    """``price_list.upserted``: a price list accounts may choose."""

    price_list: Id
    name: Text


class OrderStatusChanged(Message):
    """``order.status_changed``: the ERP's status of an order, to set on Allegro."""

    model_config = _NO_COERCION

    checkout_form_id: uuid.UUID
    status: Status


class InvoiceAdded(Message):
    """``invoice.added``: an invoice (a PDF, base64) to add to an order on Allegro."""

    model_config = _NO_COERCION

    checkout_form_id: uuid.UUID
    invoice_number: Text
    file_name: FileName
    content_base64: Annotated[str, StringConstraints(max_length=INVOICE_BASE64_MAX_CHARS)]


class ShipmentLine(Message):
    """One order line a parcel carries (Allegro takes the line only; the quantity is checked
    against the order and kept in the shipments list)."""

    line_item_id: Id
    quantity: int = Field(ge=1)


class ShipmentAdded(Message):
    """``shipment.added``: a tracking number to add to an order on Allegro
    (``POST /order/checkout-forms/{id}/shipments``).

    ``carrier_id`` is one of Allegro's carriers (``GET /order/carriers``: ``INPOST``, ``DPD``,
    ``DHL``, ...) or ``OTHER`` with ``carrier_name`` (at most 30 characters); ``waybill`` at most
    64 characters; ``line_items`` the order lines in the parcel, null (or empty) for the whole
    order. The same waybill twice on one order adds one shipment. An unknown carrier, ``OTHER``
    without a name, a line not on the order: dead-lettered with the reason. With the account's
    ``mark_sent_on_tracking`` the order's fulfillment status becomes ``SENT``."""

    model_config = _NO_COERCION

    checkout_form_id: uuid.UUID
    carrier_id: Annotated[
        str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)
    ]
    waybill: Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
    carrier_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=30, strip_whitespace=True)] | None
    ) = None
    line_items: list[ShipmentLine] | None = Field(default=None, max_length=1000)


# A package's size in centimetres and weight in kilograms: JSON numbers greater than 0.
Centimetres = Annotated[float, Strict(), Field(gt=0, le=1000)]
Kilograms = Annotated[float, Strict(), Field(gt=0, le=1000)]


class Package(Message):
    """One package of a parcel (Allegro's ``PackageRequestDto``): its type, size (cm) and
    weight (kg)."""

    model_config = _NO_COERCION

    type: Literal["PACKAGE", "DOX", "PALLET", "OTHER"]
    length: Centimetres
    width: Centimetres
    height: Centimetres
    weight: Kilograms


class Amount(Message):
    """An amount with its currency (insurance, cash on delivery)."""

    model_config = _NO_COERCION

    amount: Price
    currency: Currency


class CashOnDelivery(Amount):
    """Cash on delivery: the amount, and the account it is paid to when the carrier needs one."""

    owner_name: Name | None = None
    iban: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[0-9A-Z]{13,32}$")] | None = None


class ShipmentRequested(Message):
    """``shipment.requested``: a parcel to send with Allegro ("Wysyłam z Allegro"): a create
    command of ``/shipment-management``, followed until it ends, then its label. The message id
    is the request's idempotency key: the same id again is the same parcel.

    ``delivery_method_id`` null: the method the buyer chose on the order. ``packages`` empty or
    null: the account's ``default_package``. The sender is the account's ``shipping_sender``, the
    receiver the order's delivery address. The outcome comes back as ``shipment.created`` (with
    the label) or ``shipment.failed`` (with Allegro's errors). An unknown order, an account
    without a sender, no package: dead-lettered with the reason."""

    model_config = _NO_COERCION

    checkout_form_id: uuid.UUID
    delivery_method_id: Id | None = None
    packages: list[Package] | None = Field(default=None, max_length=50)
    insurance: Amount | None = None
    cash_on_delivery: CashOnDelivery | None = None
    reference: (
        Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
        | None
    ) = None
    label_format: Literal["PDF", "ZPL"] = "PDF"


class ShipmentCancel(Message):
    """``shipment.cancel``: cancel a parcel made with ``shipment.requested`` (its
    ``shipment_id`` from ``shipment.created``). Answered by ``shipment.cancelled``, or
    ``shipment.failed`` with ``operation`` ``cancel`` when Allegro refuses. An unknown
    shipment: dead-lettered."""

    shipment_id: Id


# Allegro's message centre accepts at most 2000 characters (spec ``NewMessage.text``); an
# e-mail is held to the same, so a message fits either channel.
MESSAGE_TEXT_MAX = 2000


class OrderMessage(Message):
    """``order.message``: the seller's own correspondence about an order (a delay, a question,
    a missing item), plain text, to its buyer by e-mail or through Allegro's message centre as
    the account chooses (``order_message_channel``). Never an invoice or a status notice:
    Allegro stops those since 2 March 2026.

    An e-mail comes from the account's main address on Allegro (``GET /me``), or from ``from``
    when the message names one: it must be one of the additional addresses Allegro allows for
    the account (``GET /account/additional-emails``), else the message is dead-lettered. The
    message centre writes as the account itself and does not read ``from``."""

    model_config = ConfigDict(coerce_numbers_to_str=False, populate_by_name=True)

    checkout_form_id: uuid.UUID
    subject: Text
    # ``body`` on the wire (the name ``body`` is the base's method)
    text: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MESSAGE_TEXT_MAX, strip_whitespace=True),
        AfterValidator(_refusing(NO_CONTROL_BUT_LINES, " other than a line break or a tab")),
        Field(json_schema_extra={"pattern": NO_CONTROL_BUT_LINES}),
    ] = Field(alias="body")
    # ``from`` on the wire (a Python keyword)
    sender: EmailAddress | None = Field(default=None, alias="from")


# --- allegro-sync.journal: orders -----------------------------------------------------------


class CheckoutFormRef(Message):
    """The checkout form an order event is about, and its revision after the event."""

    id: uuid.UUID
    revision: str | None = None


class OrderOfferRef(Message):
    """The offer of an order event's line item."""

    model_config = _NO_COERCION

    id: str


class OrderLineRef(Message):
    """A line item of an order event."""

    offer: OrderOfferRef


class OrderRef(Message):
    """The order of an order event."""

    model_config = _BY_NAME

    checkout_form: CheckoutFormRef = Field(alias="checkoutForm")
    line_items: list[OrderLineRef] = Field(default_factory=list, alias="lineItems")


class OrderEvent(Message):
    """An entry of ``GET /order/events`` (only what the handler relies on is checked)."""

    model_config = ConfigDict(coerce_numbers_to_str=False, populate_by_name=True)

    id: str
    occurred_at: datetime = Field(alias="occurredAt")
    type: str
    order: OrderRef


class OrderEventMessage(Message):
    """``allegro.order_event``, as the order journal poller publishes it: a checkout form's last
    event of a journal page (the ids of its earlier ones in ``coalesced_event_ids``), with the
    form read for the page; without a form (a read that failed, an event published by hand)
    the handler reads it."""

    model_config = _NO_COERCION

    account_id: int
    event: OrderEvent
    form: dict[str, Any] | None = None
    form_read_at: datetime | None = None
    coalesced_event_ids: list[str] = Field(default_factory=list)


class OrderRunEvent(OrderEvent):
    """An event of a run, with what the poller adds to it (see ``OrderEventMessage``)."""

    form: dict[str, Any] | None = None
    form_read_at: datetime | None = None
    coalesced_event_ids: list[str] = Field(default_factory=list)


RUN_EXTRAS = ("form", "form_read_at", "coalesced_event_ids")


class OrderEventsMessage(Message):
    """``allegro.order_events``: up to 100 checkout forms' events of one account's journal page,
    as the order journal poller publishes them (split into ``allegro.order_event`` messages
    when it fails, so that one failing form holds up no other)."""

    account_id: int
    events: list[OrderRunEvent] = Field(min_length=1, max_length=1000)

    def singles(self) -> list[OrderEventMessage]:
        """The single-event messages of the run (what its split publishes), without parsing
        them again."""
        return [
            OrderEventMessage.model_construct(
                account_id=self.account_id,
                event=event,
                form=event.form,
                form_read_at=event.form_read_at,
                coalesced_event_ids=event.coalesced_event_ids,
            )
            for event in self.events
        ]


class OrderBackfillMessage(Message):
    """``allegro.order_backfill``: a checkout form found by the orders-from backfill, or by the
    order sweep (one the journal did not deliver), with the form as the listing showed it (the
    handler need not read it again)."""

    account_id: int
    checkout_form_id: uuid.UUID
    form: dict[str, Any] | None = None
    form_read_at: datetime | None = None


# --- allegro-sync.journal: offers -----------------------------------------------------------


class OfferRef(Message):
    """The offer an event is about."""

    id: OfferId


class OfferEvent(Message):
    """One entry of ``GET /sale/offer-events`` (only what the handler needs)."""

    id: str
    occurred_at: AwareDatetime = Field(alias="occurredAt")
    type: str
    offer: OfferRef


class OfferEventMessage(Message):
    """``allegro.offer_event``: one offer event (published by hand, or by an earlier version)."""

    account_id: int
    event: OfferEvent


class OfferEventsMessage(Message):
    """``allegro.offer_events``: up to 100 events of one account's journal page, as the offer
    journal poller publishes them."""

    account_id: int
    events: list[OfferEvent] = Field(min_length=1, max_length=1000)

    def singles(self) -> list[OfferEventMessage]:
        """The single-event messages of the run (what its split publishes)."""
        return [
            OfferEventMessage.model_construct(account_id=self.account_id, event=event)
            for event in self.events
        ]


class OfferTouched(Message):
    """``allegro.offer_touched``: an order event mentioned the offer (published by orders)."""

    account_id: int
    offer_id: OfferId
    occurred_at: AwareDatetime

    @field_serializer("occurred_at")
    def _iso(self, value: datetime) -> str:
        return value.isoformat()


def run_splitter(
    journal: str, routing_key: str, extras: Collection[str] = ()
) -> Callable[[Any], list[tuple[str, str, Any]]]:
    """The split of a journal's runs (see the module docstring): ``journal`` names the message
    ids (``<journal>-event:<account>:<event id>``), ``routing_key`` is that of a single event
    and ``extras`` are the fields the poller added to each event (they travel beside it)."""

    def split(body: Any) -> list[tuple[str, str, Any]]:
        account_id = body["account_id"]
        parts = []
        for entry in body["events"]:
            event = {k: v for k, v in entry.items() if k not in extras}
            single = {"account_id": account_id, "event": event}
            single.update({k: entry[k] for k in extras if k in entry})
            parts.append((routing_key, f"{journal}-event:{account_id}:{event['id']}", single))
        return parts

    return split


# --- allegro-sync.events --------------------------------------------------------------------


class Payment(Message):
    """How an order was paid."""

    type: str | None
    paid_at: str | None
    amount: str | None


class Money(Message):
    """An amount of money as Allegro gives it: the amount as text (no rounding), ISO currency."""

    amount: str
    currency: str


class DispatchTime(Message):
    """When the parcel should be handed over (``delivery.time.dispatch``)."""

    model_config = _FROM_TO

    from_: str | None = Field(alias="from")
    to: str | None


class DeliveryTime(Message):
    """When the delivery may take place (``delivery.time``; not the deprecated
    ``time.guaranteed``) and when it should be dispatched."""

    model_config = _FROM_TO

    from_: str | None = Field(alias="from")
    to: str | None
    dispatch: DispatchTime | None


class Delivery(Message):
    """How an order is delivered. ``method`` is the method's name, as it always was;
    ``method_id`` / ``method_name`` and the fields after them were added in 2026."""

    method: str | None
    cost: str | None
    address: dict[str, Any] | None
    pickup_point: dict[str, Any] | None
    method_id: str | None = None
    method_name: str | None = None
    smart: bool | None = None
    time: DeliveryTime | None = None
    number_of_packages: int | None = None


class TypedTaxId(Message):
    """A buyer's tax id with its type from Allegro's enum (``PL_NIP``, ``VAT_EU``, ``CZ_DIC``,
    ...), as ``handlers/tax_ids.py`` reads it."""

    type: str
    value: str


class Customer(Message):
    """An inactive customer record made from the order's buyer data (design.md C2-C4); the
    e-mail is Allegro's masked address."""

    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    nip: str | None
    tax_id: TypedTaxId | None = None
    country_code: str | None
    type: CustomerType
    address: dict[str, str | None]
    active: Literal[False]


class LineTax(Message):
    """A line's tax as Allegro gives it (``lineItems[].tax``): rate such as ``"23.00"``, subject
    such as ``GOODS``, exemption such as ``MONEY_EQUIVALENT``; each may be null."""

    rate: str | None
    subject: str | None
    exemption: str | None


class LineDiscount(Message):
    """A discount applied to a line (``lineItems[].discounts[]``): ``BUNDLE``,
    ``UNIT_PERCENTAGE_DISCOUNT``, ``WHOLESALE_PRICE_LIST``, ``LARGE_ORDER_DISCOUNT``,
    ``TURNOVER_DISCOUNT``, ``COUPON`` or ``CAMPAIGN``."""

    type: str | None


class LineVoucher(Message):
    """A voucher used on a line (``lineItems[].vouchers[]``)."""

    code: str | None
    type: str | None
    status: str | None
    value: Money | None
    external_transaction_id: str | None


class OrderLine(Message):
    """A line of an order, with the product its offer is bound to. ``unit_price`` is the price
    per unit the buyer paid (after the line's discounts); the fields after ``image_url`` were
    added in 2026 (null, or [] for lists, where the checkout form has none)."""

    offer_id: str
    product_id: str | None
    ean: str | None
    name: str
    quantity: int
    unit_price: str
    image_url: str | None
    line_item_id: str | None = None
    currency: str | None = None
    original_unit_price: str | None = None
    paid: str | None = None
    tax: LineTax | None = None
    discounts: list[LineDiscount] = Field(default_factory=list)
    vouchers: list[LineVoucher] = Field(default_factory=list)


class InvoiceCompany(Message):
    """The company an invoice is for: name, typed tax ids as Allegro gives them
    (``company.ids[]``, else the deprecated ``taxId`` cleaned and typed), VAT payer status
    (``ACTIVE``, ``NON_ACTIVE``, ``NOT_APPLICABLE``)."""

    name: str | None
    tax_ids: list[TypedTaxId]
    vat_payer_status: str | None


class InvoicePerson(Message):
    """The person an invoice is for (a private purchase)."""

    first_name: str | None
    last_name: str | None


class InvoiceAddress(Message):
    """The invoice address (``invoice.address``)."""

    street: str | None
    city: str | None
    zip_code: str | None
    country_code: str | None
    company: InvoiceCompany | None
    natural_person: InvoicePerson | None


class Invoice(Message):
    """The buyer's invoice data (``invoice``): whether an invoice is wanted, its address and the
    due date of an extended payment term."""

    required: bool
    address: InvoiceAddress | None
    due_date: str | None


class Surcharge(Message):
    """An additional payment of the buyer (``surcharges[]``, shaped as a payment)."""

    id: str | None
    type: str | None
    provider: str | None
    paid_at: str | None
    amount: str | None
    currency: str | None


class OrderCreated(Message):
    """``order.created``: a paid (or cash on delivery) order for the ERP, once per checkout form
    (message id ``order.created:<checkout_form_id>``)."""

    checkout_form_id: str
    account_id: int
    account_login: str
    status: str | None
    bought_at: str | None
    currency: str | None
    total: str | None
    payment: Payment
    delivery: Delivery
    invoice_required: bool
    customer: Customer | None
    lines: list[OrderLine]
    # added in 2026 (null, or [] for lists, where the checkout form has none)
    total_to_pay: Money | None = None
    message_to_seller: str | None = None
    invoice: Invoice | None = None
    phone_number: str | None = None
    surcharges: list[Surcharge] = Field(default_factory=list)


class OrderCancelled(Message):
    """``order.cancelled``: an announced order was cancelled (message id
    ``order.cancelled:<checkout_form_id>``)."""

    checkout_form_id: str
    account_id: int


class ShipmentWaybill(Message):
    """One package's tracking number of a parcel, with its carrier."""

    waybill: str
    carrier_id: str | None


class ShipmentCreated(Message):
    """``shipment.created``: Allegro made the parcel of a ``shipment.requested`` (message id
    ``shipment.created:<shipment_id>``); its label, base64, in ``label_format``. ``waybills``:
    every package's tracking number (``waybill`` is the first package's)."""

    checkout_form_id: str
    shipment_id: str
    waybill: str | None
    waybills: list[ShipmentWaybill] = []
    carrier_id: str | None
    label_format: Literal["PDF", "ZPL"]
    label_base64: str


class ShipmentFailed(Message):
    """``shipment.failed``: Allegro refused a parcel (``operation`` ``create``, message id
    ``shipment.failed:<command id>``) or its cancel (``cancel``, ``shipment_id`` set), with
    Allegro's words (``reason``), its error list and its trace id."""

    checkout_form_id: str
    shipment_id: str | None
    operation: Literal["create", "cancel"]
    reason: str
    errors: list[dict[str, Any]]
    trace_id: str | None


class ShipmentCancelled(Message):
    """``shipment.cancelled``: Allegro cancelled the parcel (message id
    ``shipment.cancelled:<shipment_id>``)."""

    checkout_form_id: str
    shipment_id: str


class OfferBound(Message):
    """``offer.bound``: an offer was bound to a product (message id
    ``offer.bound:<offer_id>:<product_id>``)."""

    account_id: int
    offer_id: str
    product_id: str
    ean: str | None


class OfferListed(Message):
    """``offer.listed``: a product was listed (message id ``offer.listed:<account_id>:
    <product_id>``); ``status`` is the offer's publication status (ACTIVE, ACTIVATING or
    INACTIVE for a draft)."""

    account_id: int
    product_id: str
    offer_id: str
    status: str


class ListingError(Message):
    """One of Allegro's error objects (or the daemon's, code ``allegro_sync.*``)."""

    code: str | None = None
    message: str | None = None
    details: str | None = None
    path: str | None = None
    userMessage: str | None = None


class OfferListFailed(Message):
    """``offer.list_failed``: Allegro refused to list the product (message id
    ``offer.list_failed:<account_id>:<product_id>:<listing attempt>``); ``errors`` are
    Allegro's error objects, ``trace_id`` Allegro's, for its support."""

    product_id: str
    account_id: int
    errors: list[ListingError]
    trace_id: str | None


class AccountDisabled(Message):
    """``account.disabled``: an account was switched off (dead credentials, a blocked seller);
    message id ``account.disabled:<account_id>:<when>``."""

    account_id: int
    login: str
    reason: str


class OfferUpdateFailed(Message):
    """``offer.update_failed``: Allegro refused to take a product's change onto an offer
    that follows it (``update_offers_from_products``); message id
    ``offer.update_failed:<offer_id>:<trace_id or time>``. ``fields`` are those the edit
    carried (name, description, images, parameters)."""

    account_id: int
    offer_id: str
    product_id: str
    fields: list[str]
    errors: list[ListingError]
    trace_id: str | None


# The carrier's statuses of a parcel (spec ``ParcelTrackingStatus.code``).
DELIVERY_STATUSES = (
    "PENDING",
    "IN_TRANSIT",
    "RELEASED_FOR_DELIVERY",
    "AVAILABLE_FOR_PICKUP",
    "NOTICE_LEFT",
    "ISSUE",
    "DELIVERED",
    "RETURNED",
)


class ShipmentStatusChanged(Message):
    """``shipment.status_changed``: the carrier's tracking of a tracking number on Allegro
    shows a new status (``GET /order/carriers/{carrierId}/tracking``), once per change; message
    id ``shipment.status_changed:<checkout_form_id>:<waybill>:<status>:<occurred_at>``.
    ``status`` is the carrier's code (``DELIVERY_STATUSES``; ``DELIVERED`` and ``RETURNED`` end
    the tracking), ``occurred_at`` when the carrier saw it."""

    checkout_form_id: uuid.UUID
    waybill: str
    carrier_id: str
    status: str
    occurred_at: datetime


# --- the exchanges' messages, by routing key -------------------------------------------------

ERP_MESSAGES: dict[str, type[Message]] = {
    PRODUCT_UPSERTED: ProductUpserted,
    STOCK_CHANGED: StockChanged,
    PRICE_CHANGED: PriceChanged,
    PRICE_LIST_UPSERTED: PriceListUpserted,
    ORDER_STATUS_CHANGED: OrderStatusChanged,
    INVOICE_ADDED: InvoiceAdded,
    ORDER_MESSAGE: OrderMessage,
    SHIPMENT_ADDED: ShipmentAdded,
    OFFER_LIST: OfferList,
    SHIPMENT_REQUESTED: ShipmentRequested,
    SHIPMENT_CANCEL: ShipmentCancel,
}
JOURNAL_MESSAGES: dict[str, type[Message]] = {
    ORDER_EVENTS: OrderEventsMessage,
    ORDER_EVENT: OrderEventMessage,
    ORDER_BACKFILL: OrderBackfillMessage,
    OFFER_EVENTS: OfferEventsMessage,
    OFFER_EVENT: OfferEventMessage,
    OFFER_TOUCHED: OfferTouched,
}
EVENTS: dict[str, type[Message]] = {
    ORDER_CREATED: OrderCreated,
    ORDER_CANCELLED: OrderCancelled,
    OFFER_BOUND: OfferBound,
    OFFER_LISTED: OfferListed,
    OFFER_LIST_FAILED: OfferListFailed,
    ACCOUNT_DISABLED: AccountDisabled,
    OFFER_UPDATE_FAILED: OfferUpdateFailed,
    SHIPMENT_CREATED: ShipmentCreated,
    SHIPMENT_FAILED: ShipmentFailed,
    SHIPMENT_CANCELLED: ShipmentCancelled,
    SHIPMENT_STATUS_CHANGED: ShipmentStatusChanged,
}
