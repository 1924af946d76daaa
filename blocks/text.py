"""Text helpers for Block Kit: escaping, display clipping, text objects and Slack's length limits.

Rule of thumb for the other modules: text typed by people goes through `escape` (or `quote`) before it
lands in any `mrkdwn` object; `plain_text` objects are not parsed by Slack and need no escaping.
`clip` is for *display* only; stored values and GitLab issues always keep the full text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Re-exported: the escaping lives in core so use cases composing thread replies share it.
from triage.core.slack_text import ZWJ as ZWJ
from triage.core.slack_text import escape as escape

# Limits, from slack_sdk's validators and Slack's docs (https://docs.slack.dev/reference/block-kit/blocks,
# https://docs.slack.dev/reference/views/modal-views, https://docs.slack.dev/reference/block-kit/block-elements).
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000  # each item of a section's `fields` (Slack docs: section block)
HEADER_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTION_GROUP_LABEL_MAX = 75
SELECT_OPTIONS_MAX = 100
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
MESSAGE_BLOCKS_MAX = 50
MESSAGE_TEXT_MAX = 40_000  # Slack truncates longer `text`
MODAL_BLOCKS_MAX = 100
MODAL_TITLE_MAX = 24
MODAL_BUTTON_MAX = 24  # submit / close
PLACEHOLDER_MAX = 150
LABEL_MAX = 2000
HINT_MAX = 2000
PRIVATE_METADATA_MAX = 3000
INPUT_MAX_LENGTH = 3000  # plain_text_input.max_length must be 1..3000
ID_MAX = 255  # block_id, action_id, callback_id
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30

ELLIPSIS = "…"

# At the end of a clipped string: half an entity ("&am") or an unclosed Slack token ("<@U12", "<http").
_PARTIAL_TAIL = re.compile(r"(?:&(?:a|am|amp|l|lt|g|gt)?|<(?:[@#!]|https?:|mailto:)[^>]*)$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


def clip(text: str, limit: int) -> str:
    """Shorten `text` for display to at most `limit` characters, ending with "…" when shortened.

    Never cuts an entity (`&amp;`) or a Slack token (`<@U1>`) in half. Display only: never use this on
    values that are stored or sent to GitLab.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    head = _PARTIAL_TAIL.sub("", text[: limit - len(ELLIPSIS)])
    return head.rstrip() + ELLIPSIS


def plain(text: str, limit: int | None = None) -> dict[str, Any]:
    """A `plain_text` object, clipped to `limit` when one is given. Slack does not parse plain text."""
    return {"type": "plain_text", "text": clip(text, limit) if limit else text, "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    """A `mrkdwn` object. `text` is used as is: escape people's text before you put it in."""
    return {"type": "mrkdwn", "text": text}


def quote(text: str, limit: int | None = SECTION_TEXT_MAX) -> str:
    """Escape `text` and show it as a block quote ("> " before each line), clipped to `limit` (None: not)."""
    lines = escape(text.strip()).splitlines() or [""]
    quoted = "\n".join(f"> {line}" for line in lines)
    return clip(quoted, limit) if limit else quoted


def user(uid: str | None) -> str:
    """A user mention (`<@U123>`) for a Slack user id; anything else is shown escaped, pinging nobody."""
    if not uid:
        return "someone"
    return f"<@{uid}>" if _USER_ID.match(uid) else escape(uid)


def date_token(dt: datetime, fallback: str | None = None) -> str:
    """A Slack date token: each reader sees `dt` in their own time zone, e.g. "Nov 3 at 2:00 PM".

    A naive `dt` is taken as UTC. `fallback` is what clients that can't render the token show
    (notifications, some integrations); by default the UTC time.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if fallback is None:
        fallback = dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # '|' would end the fallback early; '>' would end the token (escape takes care of it).
    fallback = escape(fallback).replace("|", "/")
    return f"<!date^{int(dt.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def link(url: str, label: str) -> str:
    """A mrkdwn link. `label` is escaped; `url` is assumed to be an http(s) URL the app built."""
    safe_url = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe_url}|{escape(label).replace('|', '/')}>"


def chunks(text: str, limit: int = SECTION_TEXT_MAX) -> Iterator[str]:
    """Split `text` into non-blank pieces of at most `limit` characters, at line breaks where possible.

    Whitespace at the cuts is dropped (a section's text can't be blank).
    """
    text = text.strip()
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        yield text[:cut].rstrip()
        text = text[cut:].lstrip()
    if text:
        yield text
