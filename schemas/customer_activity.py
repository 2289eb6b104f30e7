"""customer-activity: one periodic account statement; delinquency labels derive from later ones."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from schemas.base import (
    VERSION_IS_INT,
    Count,
    Event,
    Identifier,
    Money,
    NonNegativeMoney,
    NotFutureDate,
)


class CustomerActivityRecorded(Event):
    """A statement was recorded for a customer's account."""

    TOPIC: ClassVar[str] = "customer-activity"
    KEY_FIELD: ClassVar[str] = "customer_id"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    statement_id: Identifier
    customer_id: Identifier
    statement_date: NotFutureDate
    """The day the statement was closed."""
    balance: Money
    """Outstanding balance; negative when the account is in credit."""
    credit_limit: NonNegativeMoney
    payment_amount: NonNegativeMoney
    """What the customer paid during the period."""
    minimum_due: NonNegativeMoney
    purchase_amount: NonNegativeMoney
    cash_advance_amount: NonNegativeMoney
    days_past_due: Count
    """Days the account is past due at the statement date (delinquent at 30 or more)."""
