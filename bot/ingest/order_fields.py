"""Segment's e-commerce order events: what the parser checks, and what the fold reads.

``Order Completed``, ``Order Refunded`` and ``Order Cancelled`` are track calls like any
other (intent rules still match them) and, besides, orders (``scoring.rfm``). Their
properties are checked where every call is (``bot.ingest.inbound``), so a bad one is a
400 naming the field on ``/webhooks/events`` and a rejected entry on ``/v1/*``:

- ``order_id``: required, a non-empty string or an integer;
- ``revenue``, else ``total``: a number ≥ 0. Completed needs one of them (or ``products``
  with numeric ``price`` and optional ``quantity``, summed); on a refund it is the amount
  refunded, and without one the whole order is refunded;
- ``currency``: a 3-letter code, any case. One without a configured rate is accepted and
  kept apart (``rfm.rates``); none at all means the base currency;
- ``refund_id`` (optional): tells two refunds of one order apart; without it the event's
  messageId does, so a retried refund counts once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from bot.errors import json_kind, shown
from scoring.rfm import COMPLETED, EVENT_KINDS, REFUNDED, OrderEvent

MAX_AMOUNT = 1e15
MAX_ID_CHARS = 255
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
AMOUNT_FIELDS = ("revenue", "total")

Add = Callable[[str, str], None]


def check_order(name: str, properties: Mapping[str, Any], at: str, add: Add) -> None:
    """Add a (field, message) for each problem of an order event's ``properties`` (whose
    path is ``at``); nothing for a call that is not an order event."""
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return
    _check_id(properties, "order_id", at, add, required=True)
    if kind == REFUNDED:
        _check_id(properties, "refund_id", at, add, required=False)
    for key in AMOUNT_FIELDS:
        if key in properties:
            _check_amount(properties[key], f"{at}.{key}", add)
    currency = properties.get("currency")
    if currency is not None and not (isinstance(currency, str) and _CURRENCY.match(currency)):
        add(f"{at}.currency", f"expected a 3-letter currency code like EUR, got {shown(currency)}")
    unpriced = not any(k in properties for k in AMOUNT_FIELDS)
    if kind == COMPLETED and unpriced and _products_total(properties.get("products")) is None:
        add(
            f"{at}.revenue",
            "Order Completed needs properties.revenue or properties.total (a number ≥ 0), "
            "or products with a numeric price",
        )


def _check_id(props: Mapping[str, Any], key: str, at: str, add: Add, *, required: bool) -> None:
    value = props.get(key)
    if value is None or value == "":
        if required:
            add(f"{at}.{key}", f"missing {key}: orders count once per {key}")
        return
    if isinstance(value, bool) or not isinstance(value, str | int):
        add(f"{at}.{key}", f"expected a string or an integer, got {json_kind(value)}")
    elif len(str(value)) > MAX_ID_CHARS:
        add(f"{at}.{key}", f"is {len(str(value))} characters, over the limit of {MAX_ID_CHARS}")


def _check_amount(value: Any, field: str, add: Add) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        add(field, f"expected a number, got {json_kind(value)} {shown(value)}")
    elif not math.isfinite(value) or value < 0:
        add(field, f"must be a number ≥ 0, got {shown(value)}")
    elif value > MAX_AMOUNT:
        add(field, f"is over the limit of {MAX_AMOUNT:g}")


def _products_total(products: Any) -> float | None:
    """Σ price × quantity (1 when absent) of ``products``; None unless every price is a
    number ≥ 0."""
    if not isinstance(products, list) or not products:
        return None
    total = 0.0
    for product in products:
        if not isinstance(product, dict):
            return None
        price, quantity = product.get("price"), product.get("quantity", 1)
        if not (_number(price) and _number(quantity)):
            return None
        if price < 0 or quantity < 0 or not math.isfinite(price * quantity):
            return None
        total += price * quantity
    return total


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def order_event(
    name: str | None, properties: Mapping[str, Any], *, at: float, message_id: str
) -> OrderEvent | None:
    """The order event a checked track call carries; None for any other call."""
    kind = EVENT_KINDS.get(name or "")
    if kind is None:
        return None
    amount: float | None = None
    for key in AMOUNT_FIELDS:
        if key in properties and properties[key] is not None:
            amount = float(properties[key])
            break
    if amount is None and kind == COMPLETED:
        amount = _products_total(properties.get("products")) or 0.0
    currency = properties.get("currency")
    refund_id = properties.get("refund_id")
    return OrderEvent(
        kind=kind,
        order_id=str(properties["order_id"]),
        at=at,
        amount=amount,
        currency=currency.upper() if isinstance(currency, str) else None,
        key=f"refund:{refund_id}" if refund_id not in (None, "") else f"message:{message_id}",
    )
