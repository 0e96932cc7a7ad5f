"""Exact money: decimal strings in major units (Shopify) to integer minor units with a currency."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that differ from the usual 2.
_EXPONENT_OVERRIDES = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}


class MoneyFormatError(ValueError):
    """A money value that cannot be read exactly."""


def currency_exponent(currency: str) -> int:
    return _EXPONENT_OVERRIDES.get(currency.upper(), 2)


def is_currency_code(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 3
        and value.isascii()
        and value.isalpha()
        and value.isupper()
    )


def to_minor_units(value: object, currency: str) -> int:
    """Parse a major-unit amount ("199.00", 195.66, 12) into integer minor units, exactly.

    Refuses anything that would need rounding or guessing ("12,50", "1e3", NaN, booleans), because a
    silently rounded amount is how reconciliations stop adding up.
    """
    if isinstance(value, bool) or value is None:
        raise MoneyFormatError(f"not an amount: {value!r}")
    if isinstance(value, float):
        # Shopify sometimes sends JSON numbers (refund line subtotal 195.66); repr is the shortest exact form.
        text = repr(value)
    elif isinstance(value, int | str):
        text = str(value).strip()
    else:
        raise MoneyFormatError(f"not an amount: {value!r}")
    if not text or any(ch not in "0123456789.-" for ch in text):
        raise MoneyFormatError(f"not a decimal amount: {value!r}")
    try:
        amount = Decimal(text)
    except InvalidOperation as error:
        raise MoneyFormatError(f"not a decimal amount: {value!r}") from error
    exponent = currency_exponent(currency)
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyFormatError(f"{value!r} has more decimals than {currency} allows ({exponent})")
    return int(scaled)


def format_minor_units(minor: int, currency: str) -> str:
    """Inverse of to_minor_units, for reports: 40994, 'USD' -> '409.94'."""
    exponent = currency_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"
