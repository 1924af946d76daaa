"""What we accept from outside (Slack's and GitLab's payloads): JSON of bounded depth without NUL
characters or lone surrogates, ids our columns can hold, and one wording for a payload that doesn't fit
its model. Pure."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

# Deeper than any payload Slack or GitLab sends (Block Kit nests a few levels); deeper input is refused
# before a recursive walk (ours, pydantic's, the JSON encoder's) could exhaust the stack.
MAX_JSON_DEPTH = 64

# Our id columns are 4-byte integers: a larger id in a payload can name nothing we stored.
DB_ID_MAX = 2**31 - 1


class BadJSON(ValueError):
    """A body that is not JSON we are willing to read; the message says why, for a 400."""


def loads(raw: bytes | str) -> Any:
    """JSON we accept: parsed, at most MAX_JSON_DEPTH deep, every string fit to store (see `clean`)."""
    try:
        value = json.loads(raw)
    except RecursionError as e:
        raise BadJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise BadJSON("body is not valid JSON") from e
    return value if within_limits(raw) else clean(value)


# A surrogate written as a JSON escape (`\ud83d`, valid in a pair, a lone one is not text), or one in the
# text itself (a str given with surrogatepass): valid UTF-8 never holds the bytes ED A0 to ED BF.
_SURROGATE_IN_TEXT = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]")
# What is left of a surrogate once json.loads has joined the valid pairs: a lone one.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# Every byte but the five that give JSON text its structure: `"`, `[`, `]`, `{`, `}`.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def within_limits(text: bytes | str) -> bool:
    """True when `text`, which json.loads has accepted, needs no `clean`: no string in it holds a NUL or a
    surrogate, and it nests at most MAX_JSON_DEPTH deep. False means "walk it with `clean`", not "refuse it".

    Decided on the text with bytes operations (loops in C), several times cheaper than the walk for a
    Slack payload. In valid JSON a NUL can only be written as the escape \\u0000. For the depth: drop
    escaped backslashes and quotes, then every byte but quotes and brackets; two quotes side by side
    enclose no structure, and what is left between quote pairs is inside strings. The brackets that
    remain are the structure, and each pass removes the innermost `[]`, then `{}`: one or two levels a
    pass, so MAX_JSON_DEPTH // 2 passes that empty it mean at most MAX_JSON_DEPTH levels (deeper payloads,
    rare and legitimate up to the limit, are left to the walk)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\x00" in raw:
        # Not UTF-8 (json.loads also reads UTF-16 and UTF-32, where every ASCII character has zero bytes
        # beside it and nothing below holds): valid UTF-8 JSON has no zero byte anywhere.
        return False
    if b"\xed" in raw and _SURROGATE_IN_TEXT.search(raw):
        return False  # a surrogate in the text itself (a str given with surrogatepass)
    if b"\\" in raw:  # every escape starts with one; most payloads have few
        if b"\\u0000" in raw:
            return False  # a NUL, or an escaped backslash before "u0000": either way the walk decides
        if (b"\\ud" in raw or b"\\uD" in raw) and _SURROGATE_IN_TEXT.search(raw):
            return False  # an emoji written as an escaped pair is fine, and the walk finds it so
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    for _ in range(MAX_JSON_DEPTH // 2):
        if not skeleton:
            return True
        skeleton = skeleton.replace(b"[]", b"").replace(b"{}", b"")
    return not skeleton


def _unfit(text: str) -> bool:
    """A NUL (PostgreSQL can store none in text, and no person types one) or a lone surrogate (half of
    a character: no database driver can encode it as UTF-8)."""
    return "\x00" in text or (not text.isascii() and _LONE_SURROGATE.search(text) is not None)


def _fit(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def clean(value: Any) -> Any:
    """`value` with NUL characters removed from every string and key and lone surrogates replaced by
    U+FFFD (see `_unfit`), refused when nested deeper than MAX_JSON_DEPTH. Iterative, so that depth
    can't exhaust the stack; lists and dicts are cleaned in place."""
    if isinstance(value, str):
        return _fit(value)
    if not isinstance(value, dict | list):
        return value
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    if _unfit(item):
                        node[i] = _fit(item)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
        else:
            for key in [k for k in node if isinstance(k, str) and _unfit(k)]:
                node[_fit(key)] = node.pop(key)
            for key, item in node.items():
                if isinstance(item, str):
                    if _unfit(item):
                        node[key] = _fit(item)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
    return value


def first_error(error: ValidationError, whole: str) -> str:
    """'view.state: Field required': where the first problem is (`whole` when it is the value itself)."""
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or whole}: {first['msg']}"
