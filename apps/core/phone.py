"""Phone numbers as people type them, made comparable.

A buyer writes one mainland mobile as ``13911110000``, ``+86 139-1111-0000``, ``0086 13911110000``,
``013911110000`` or in full-width digits from a Chinese keyboard (``１３９１１１１００００``). The
storefront identifies a buyer by phone (the per-buyer limit follows it), so those must be one
number: :func:`normalize_cn_mobile` gives the 11-digit ``1[3-9]xxxxxxxxx`` form, and
:func:`normalize_phone` gives that form for a mainland mobile and, for any other number
(landlines, foreign numbers), the number as written without spaces and dashes.

Only ASCII and full-width digits count: other Unicode digits (superscripts, Arabic-Indic...)
are not digits of a phone number.
"""

from __future__ import annotations

import re

# Full-width digits, plus and hyphen, the ideographic space and the dashes a keyboard may produce.
_FOLD = str.maketrans(
    {
        **{0xFF10 + i: str(i) for i in range(10)},
        0xFF0B: "+",
        0xFF0D: "-",
        0x3000: " ",
        0x00A0: " ",
        0x2010: "-",
        0x2011: "-",
        0x2012: "-",
        0x2013: "-",
        0x2014: "-",
        0x2212: "-",
    }
)
_SEPARATORS = re.compile(r"[ \t\-]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_ASCII_DIGITS = re.compile(r"[0-9]+")


def compact_phone(text: str) -> str:
    """``text`` with full-width characters folded to ASCII and spaces and dashes removed."""
    return _SEPARATORS.sub("", text.translate(_FOLD)).strip()


def normalize_cn_mobile(text: str) -> str | None:
    """The 11-digit form of a mainland China mobile number, or None if ``text`` is not one.

    Accepts the country code as ``+86``, ``0086`` or ``86`` and the trunk prefix ``0``.
    """
    s = compact_phone(text)
    if s.startswith("+"):
        if not s.startswith("+86"):
            return None  # another country
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    elif len(s) == 13 and s.startswith("86"):
        s = s[2:]
    if len(s) == 12 and s.startswith("0"):
        s = s[1:]
    return s if _MOBILE.fullmatch(s) else None


def normalize_phone(text: str) -> str:
    """The one stored form of a phone number: a mainland mobile's 11 digits, anything else as
    written without spaces and dashes (full-width characters folded to ASCII)."""
    return normalize_cn_mobile(text) or compact_phone(text)


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty string of ASCII digits only (``str.isdigit`` also takes ``"²"``)."""
    return _ASCII_DIGITS.fullmatch(text) is not None
