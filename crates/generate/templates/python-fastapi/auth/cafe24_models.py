"""Typed Admin API resources (CAFE24.md §4). Each keeps the fields it does not name, so nothing
Cafe24 sends is lost; flags are Cafe24's ``"T"``/``"F"`` and money is a string (``"1100.00"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Flag = Literal["T", "F"]


class Product(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_no: int
    product_code: str = ""
    product_name: str = ""
    price: str | None = None


class Variant(BaseModel):
    model_config = ConfigDict(extra="allow")

    variant_code: str
    quantity: int | None = None


class StoreInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    mall_id: str | None = None
    shop_name: str | None = None


class VariantUpdate(BaseModel):
    """The ``request`` of ``PUT /products/{no}/variants/{code}``; unset fields are not sent."""

    model_config = ConfigDict(extra="forbid")

    quantity: int | None = None
    safety_inventory: int | None = None
    use_inventory: Flag | None = None
    display_soldout: Flag | None = None
    display: Flag | None = None
    selling: Flag | None = None
