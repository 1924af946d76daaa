"""Salesforce record ids: checksum, 15 -> 18 normalisation, and Opportunity id parsing.

The 15-character id is case-sensitive; the 18-character ("case-safe") form, which the API returns,
appends a 3-character suffix that encodes where the upper-case letters are: for each 5-character chunk,
bit j is set when its j-th character is A-Z, and the 5-bit number indexes "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".
A mistyped or case-mangled 18-character id is caught by recomputing the suffix. The first 3 characters are
the object's key prefix; an Opportunity's is `006` in every org. (Salesforce SOAP API Developer Guide,
"Field Types": https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm)
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

OPPORTUNITY_PREFIX = "006"

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_ID_BODY = re.compile(r"[A-Za-z0-9]{15}")

# Standard objects' key prefixes, the same in every org; used only to explain a wrong paste.
_PREFIX_NAMES = {
    "001": "an Account",
    "003": "a Contact",
    "005": "a User",
    "00Q": "a Lead",
    "500": "a Case",
    "00D": "an Organization",
    "701": "a Campaign",
    "00T": "a Task",
    "00U": "an Event",
    "800": "a Contract",
    "801": "an Order",
}

# An Opportunity id standing alone in free text: 15 or 18 alphanumerics not glued to more of them.
_OPP_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])006(?:[A-Za-z0-9]{15}|[A-Za-z0-9]{12})(?![A-Za-z0-9])")


class InvalidSalesforceId(ValueError):
    """The text is not a usable Salesforce (Opportunity) id; the message says why, for the user."""


def checksum(id15: str) -> str:
    """The 3-character suffix that turns a 15-character id into its 18-character form."""
    if not _ID_BODY.fullmatch(id15):
        raise InvalidSalesforceId("A Salesforce id body is exactly 15 letters and digits.")
    suffix = []
    for start in (0, 5, 10):
        bits = 0
        for j, ch in enumerate(id15[start : start + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        suffix.append(_SUFFIX_ALPHABET[bits])
    return "".join(suffix)


def _check_record_id(text: str) -> str:
    """Validate a bare 15/18-character record id of any object; return its 18-character form."""
    bad = sorted(set(_NOT_ALNUM.findall(text)))
    if bad:
        shown = " ".join(repr(ch) for ch in bad[:5])
        raise InvalidSalesforceId(
            f"A Salesforce id has only letters and digits; remove {shown} (or paste the Salesforce link)."
        )
    if len(text) not in (15, 18):
        raise InvalidSalesforceId(
            f"A Salesforce id has 15 or 18 characters; this one has {len(text)}. "
            "Copy it again from the Opportunity's page or paste its link."
        )
    body = text[:15]
    expected = checksum(body)
    # The suffix itself is case-insensitive ("case-safe"); the body's case is what it checks.
    if len(text) == 18 and text[15:].upper() != expected:
        raise InvalidSalesforceId(
            "The last three characters don't match the rest of the id; check for a typo "
            "(upper/lower case matters) or paste the Salesforce link instead."
        )
    return body + expected


def to_18(id_: str) -> str:
    """The 18-character form of a 15- or 18-character record id; raises InvalidSalesforceId."""
    return _check_record_id(id_.strip())


def _check_opportunity(text: str) -> str:
    id18 = _check_record_id(text)
    prefix = id18[:3]
    if prefix != OPPORTUNITY_PREFIX:
        what = _PREFIX_NAMES.get(prefix)
        kind = f"{prefix} is {what} id" if what else f"this id starts with {prefix}"
        raise InvalidSalesforceId(
            f"That isn't an Opportunity: {kind}, and Opportunity ids start with 006. "
            "Open the Opportunity in Salesforce and copy its id or link."
        )
    return id18


def _url_candidates(text: str) -> list[str]:
    """15/18-character alphanumeric runs in a URL's path, query and fragment (never its host)."""
    parts = urlsplit(text if "://" in text else "https://" + text)
    rest = unquote(f"{parts.path} {parts.query} {parts.fragment}")
    return [tok for tok in _ALNUM.findall(rest) if len(tok) in (15, 18)]


def parse_opportunity_id(text: str) -> str:
    """Accept an Opportunity id (15 or 18 chars) or a Salesforce URL holding one; return the 18-char id."""
    text = (text or "").strip()
    if not text:
        raise InvalidSalesforceId("Paste the Opportunity's Salesforce id or link.")
    if "/" not in text:
        return _check_opportunity(text)
    candidates = _url_candidates(text)
    if not candidates:
        raise InvalidSalesforceId(
            "That link doesn't contain a Salesforce record id; open the Opportunity and copy the address "
            "from its page."
        )
    first_error: InvalidSalesforceId | None = None
    # Prefer an Opportunity-looking id: a link may also carry other record ids (e.g. an Account's).
    for tok in sorted(candidates, key=lambda t: not t.startswith(OPPORTUNITY_PREFIX)):
        try:
            return _check_opportunity(tok)
        except InvalidSalesforceId as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def find_opportunity_id(text: str) -> str | None:
    """The first valid Opportunity id (bare or inside a link) in free text, as 18 chars; else None."""
    for match in _OPP_IN_TEXT.finditer(text or ""):
        try:
            return _check_opportunity(match.group())
        except InvalidSalesforceId:
            continue
    return None


def same_record(a: str, b: str) -> bool:
    """True when both name the same record (15- and 18-character forms compare equal)."""
    try:
        return to_18(a) == to_18(b)
    except InvalidSalesforceId:
        return False
