"""Kubernetes resource quantities: ``100m`` CPU, ``128Mi`` memory, ``1.5`` and ``2e3`` forms."""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
    "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


MAX_QUANTITY = Decimal(2**63 - 1)
"""The largest quantity, as Kubernetes' int64-backed ``resource.Quantity``: ``1e999999999`` or ``inf`` would
make every later ``int()`` of it (the scheduler's millicores) take forever or raise."""


class QuantityError(ValueError):
    pass


def _bounded(number: Decimal, value: object) -> Decimal:
    if not number.is_finite():
        raise QuantityError(f"not a finite number: {value!r}")
    if number < 0:
        raise QuantityError(f"quantities must not be negative: {value!r}")
    if number > MAX_QUANTITY:
        raise QuantityError(f"quantities must be at most {MAX_QUANTITY} (2^63-1): {value!r}")
    return number


def parse_quantity(value: str | int | float) -> Decimal:
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return _bounded(Decimal(str(value)), value)
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Decimal:
    """Parsed once per distinct text: a cluster uses a handful of quantities (``100m``, ``128Mi``) many
    times. Decimals are immutable, so sharing them is safe."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise QuantityError(f"quantities must match '<number><suffix>' such as 100m, 2, 128Mi: {value!r}")
    try:
        number = Decimal(match.group(1))
        if number.is_finite() and number and abs(number.adjusted()) > 40:  # refused before any arithmetic
            raise QuantityError(f"quantities must be between 1e-40 and {MAX_QUANTITY} (2^63-1): {value!r}")
        return _bounded(number * _SUFFIX[match.group(2) or ""], value)
    except InvalidOperation:
        raise QuantityError(f"not a number: {value!r}") from None


def cpu_millis(value: str | int | float) -> int:
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: str | int | float) -> int:
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))
