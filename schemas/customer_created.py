"""customer-created: a new customer and the profile the delinquency model learns from."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from schemas.base import (
    VERSION_IS_INT,
    Contract,
    Count,
    Event,
    Identifier,
    NonNegativeMoney,
    NotFutureDatetime,
    Text,
)


class CustomerProfile(Contract):
    """What is known about a customer when the account opens."""

    age: Annotated[int, Field(ge=18, le=120)]
    """Age in whole years, 18 to 120."""
    annual_income: NonNegativeMoney
    credit_limit: NonNegativeMoney
    region: Text
    product: Text
    """The credit product the customer holds."""
    tenure_months: Count
    """Months the customer has been with the company."""
    employment_status: Text


class CustomerCreated(Event):
    """A customer was created upstream."""

    TOPIC: ClassVar[str] = "customer-created"
    KEY_FIELD: ClassVar[str] = "customer_id"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    customer_id: Identifier
    created_at: NotFutureDatetime
    """When the customer was created upstream."""
    profile: CustomerProfile
