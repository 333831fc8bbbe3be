"""Exact decimal values, from the bundle file to the database to the JSON body.

PostgreSQL stores NUMERIC exactly. SQLite has no decimal type: a NUMERIC column keeps a REAL
(an IEEE double). Any decimal of at most 15 significant digits survives that trip exactly, because
the shortest repr of the double is the decimal it came from. So values are limited to 15
significant digits and 6 decimal places (checked on the way in), and on the way out the double is
read back through its repr, never through binary expansion.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

MAX_SIGNIFICANT_DIGITS = 15
MAX_DECIMAL_PLACES = 6


class DecimalRangeError(ValueError):
    """The value cannot be stored exactly on both databases."""


def normalize(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (12E+4 -> 120000)."""
    if value == 0:
        return Decimal(0)
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized


def parse_decimal(raw: Any) -> Decimal:
    """Read a value from text or a number (never a float's binary expansion) and check its range.

    The checks run on the digits as written, before any arithmetic: decimal arithmetic rounds to
    28 digits, which would silently change (or fail on) a value far out of range.
    """
    if isinstance(raw, bool):
        raise DecimalRangeError("must be a number, not a boolean")
    if isinstance(raw, float):
        raw = repr(raw)
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise DecimalRangeError(f"{raw!r} is not a decimal number") from None
    if not value.is_finite():
        raise DecimalRangeError("must be a finite number")
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = list(digit_tuple)
    while len(digits) > 1 and digits[-1] == 0:  # trailing zeros carry no information
        digits.pop()
        exponent += 1
    if digits == [0]:
        return Decimal(0)
    if -exponent > MAX_DECIMAL_PLACES:
        raise DecimalRangeError(f"at most {MAX_DECIMAL_PLACES} decimal places")
    if len(digits) + max(exponent, 0) > MAX_SIGNIFICANT_DIGITS:
        raise DecimalRangeError(f"at most {MAX_SIGNIFICANT_DIGITS} significant digits")
    # Small enough now for exact arithmetic: write 1.2E+5 as 120000.
    return normalize(Decimal((sign, tuple(digits), exponent)))


def to_json_text(value: Decimal) -> str:
    """The decimal as a JSON number literal: 96.6, 10273000, never 1.0273E+7."""
    text = str(value)
    if "E" not in text and not ("." in text and text.endswith("0")) and value != 0:
        return text  # already plain and without trailing zeros (the common case, much faster)
    return format(normalize(value), "f")
