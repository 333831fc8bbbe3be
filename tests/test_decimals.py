"""Exact decimals on their way out: from SQLite's doubles, and into JSON number text."""

from decimal import Decimal

import pytest
from sqlalchemy.dialects import sqlite

from app.coltypes import ExactDecimal
from app.decimals import normalize, to_json_text

# Both functions have a fast path for the common case; each must agree with the plain rule.
DOUBLES = [0.0, -0.0, 1e-05, 2.5e-06, 0.1, 96.6, -3.25, 100.0, 1e15, 1e16, 123456789012345.0]
TEXTS = ["0", "0.0", "-0", "-0.00", "1.50", "96.6", "100", "-12.340", "1E+5", "1.0273E+7"]


@pytest.mark.parametrize("double", DOUBLES)
def test_a_sqlite_double_reads_back_as_its_shortest_decimal_without_exponent_or_zeros(
    double: float,
) -> None:
    read = ExactDecimal().process_result_value(double, sqlite.dialect())

    expected = normalize(Decimal(repr(double)))
    assert read == expected
    assert str(read) == str(expected)  # the same digits and exponent, not just equal


@pytest.mark.parametrize("text", [*TEXTS, "0.000001", "1E-6", "10273000"])
def test_json_text_is_plain_notation_without_trailing_zeros(text: str) -> None:
    written = to_json_text(Decimal(text))

    assert written == format(normalize(Decimal(text)), "f")
    assert "E" not in written and written != "-0"
