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


class QuantityError(ValueError):
    pass


def parse_quantity(value: str | int | float) -> Decimal:
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
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
    except InvalidOperation:
        raise QuantityError(f"not a number: {value!r}") from None
    if number < 0:
        raise QuantityError(f"quantities must not be negative: {value!r}")
    return number * _SUFFIX[match.group(2) or ""]


def cpu_millis(value: str | int | float) -> int:
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: str | int | float) -> int:
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))
