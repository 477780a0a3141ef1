"""Schemas of the messages the daemon consumes (design.md section 4, ``erp.events``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Ean = Annotated[str, StringConstraints(pattern=r"^\d{8,14}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# design.md C4: the customer type of a customer card, from its country
CustomerType = Literal["domestic", "intra_eu", "extra_eu"]
CUSTOMER_TYPES: tuple[CustomerType, ...] = ("domestic", "intra_eu", "extra_eu")


class Message(BaseModel):
    """Base of every consumed message: unknown fields are ignored, numbers may name ids."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class ProductUpserted(Message):
    """``product.upserted``: the ERP created or changed a product."""

    product_id: Id
    ean: Ean | None
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    image_url: str | None = None


class StockChanged(Message):
    """``stock.changed``: the ERP stock of a product; ``version`` grows per product."""

    product_id: Id
    quantity: int = Field(ge=0)
    version: int = Field(ge=0)


class PriceChanged(Message):
    """``price.changed``: a product's price in one price list."""

    product_id: Id
    price_list: Id
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: Currency
    version: int = Field(ge=0)


class PriceListUpserted(Message):
    """``price_list.upserted``: a price list accounts may choose."""

    price_list: Id
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
