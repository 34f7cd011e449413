"""Go's `strconv.FormatFloat` for the verbs `fmt` hands it: `e f g` with a precision, and
the hexadecimal (`%x`: `0x1.8p+01`) and binary (`%b`: `4503599627370496p-52`) forms.

Shortest forms come from `values.format_float` (Go's printing of a float64 with `%v`).
"""

from __future__ import annotations

import math

from pasture.prompt.gotemplate.values import format_float


def strconv_float(value: float, verb: str, prec: int) -> str:
    """`strconv.FormatFloat(value, verb, prec, 64)` for every verb Go's fmt passes on."""
    if verb in "xX":
        return _hex_float(value, prec, upper=verb == "X")
    if verb == "b":
        return _binary_float(value)
    if math.isinf(value) or math.isnan(value):
        return format_float(value)
    if prec < 0:
        return format_float(value, verb)
    if verb in "gG" and prec == 0:
        prec = 1
    text = format(value, f".{prec}{verb}")
    return text.replace("inf", "Inf").replace("nan", "NaN")


def _hex_float(value: float, prec: int, upper: bool) -> str:
    """`%x` of a float: `-0x1.8p+01`, the mantissa normalised to start with 1."""
    if math.isinf(value) or math.isnan(value):
        return format_float(value)
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        mantissa, exp = 0, 0
    else:
        fraction, exp = math.frexp(abs(value))
        mantissa, exp = int(fraction * (1 << 53)), exp - 1  # 1.xxx × 2^exp, 52 bits after
    bits = 52
    if 0 <= prec < 13:
        shift = bits - 4 * prec
        kept, rest = mantissa >> shift, mantissa & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and kept & 1):
            kept += 1
        if kept >> (4 * prec) >= 2:  # rounding carried into a new leading digit
            kept >>= 1
            exp += 1
        mantissa, bits = kept, 4 * prec
    digits = format(mantissa & ((1 << bits) - 1), "x").rjust(bits // 4, "0") if bits else ""
    if prec < 0:
        digits = digits.rstrip("0")
    elif prec > len(digits):
        digits += "0" * (prec - len(digits))
    lead = "1" if mantissa else "0"
    text = f"{sign}0x{lead}{'.' + digits if digits else ''}p{'-' if exp < 0 else '+'}" \
           f"{abs(exp):02d}"
    return text.upper() if upper else text


def _binary_float(value: float) -> str:
    """`%b` of a float: the decimal mantissa and binary exponent (`4503599627370496p-52`)."""
    if math.isinf(value) or math.isnan(value):
        return format_float(value)
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    magnitude = abs(value)
    if magnitude < 2.2250738585072014e-308:  # zero and subnormals keep the least exponent
        mantissa, exp = int(magnitude * 2.0 ** 1074), -1074
    else:
        fraction, exp = math.frexp(magnitude)
        mantissa, exp = int(fraction * (1 << 53)), exp - 53
    return f"{sign}{mantissa}p{'-' if exp < 0 else '+'}{abs(exp)}"
