"""The value types of writable record fields, shared by every entity's schema: each says
what a body may hold and how it reads back."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from crm.errors import DATE, DATE_TIME

Text100 = Annotated[str, StringConstraints(max_length=100)]
Text255 = Annotated[str, StringConstraints(max_length=255)]
# Trimmed here too, not only by RecordIn: other bodies (a convert's) hold it to the same rule.
Required255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Phone = Annotated[str, StringConstraints(max_length=50)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

# Amounts are stored in a NUMERIC(15, 2) column: 13 digits before the point keep every
# amount exact as a JSON number too (a double holds 15 significant digits).
AMOUNT_MAX = Decimal("9999999999999.99")


def _amount(value: Any) -> Decimal:
    """An amount exactly as written: a body's numbers with a fraction or an exponent come
    as Decimals (crm.validation.ExactNumbersRoute), as do a CSV cell's, so that 1e-400 or
    1.005 is refused rather than rounded."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("Must be a number, e.g. 24000 or 1234.5.")
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not amount.is_finite() or amount < 0 or amount > AMOUNT_MAX:
        raise ValueError(f"Must be a number from 0 to {AMOUNT_MAX}.")
    cents = amount.quantize(Decimal("0.01"))
    if amount != cents:
        raise ValueError("At most 2 decimals.")
    return cents.copy_abs()  # -0 is 0


# Documented as what it takes: a JSON number (a Decimal's own schema would also allow a string).
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": float(AMOUNT_MAX)}),
]

CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies)


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError("Must be an ISO 4217 currency code in capitals, e.g. EUR.")
    return value


Currency = Annotated[str, AfterValidator(_currency)]


def _iso_date(value: Any) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(DATE)


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _iso_moment(value: Any) -> datetime:
    """An ISO 8601 date-time, in UTC; one without a time zone is taken as UTC."""
    if isinstance(value, str) and len(value) > 10:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            try:
                return moment.astimezone(UTC)
            except OverflowError:
                raise ValueError("Out of range: the UTC time must be in years 1 to 9999.") from None
    raise ValueError(DATE_TIME)


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_moment)]


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError("Must be a whole number from 0 to 100.")
    return value


Percent = Annotated[int, BeforeValidator(_percent)]
Ids = Annotated[list[Any], Field(max_length=100)]
