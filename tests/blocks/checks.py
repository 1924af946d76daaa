"""Shared checks for Block Kit output: Slack's limits (limits.md) and slack_sdk's own validation.

slack_sdk validates many limits client-side, but not all of them (e.g. `initial_value` longer than
`max_length`, or `initial_option` that is not one of the options, both of which Slack rejects), so
`check_limits` walks the JSON itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from blocks import text as t


def walk(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from walk(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from walk(item)


def mrkdwn_texts(obj: Any) -> list[str]:
    return [d["text"] for d in walk(obj) if d.get("type") == "mrkdwn"]


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    if "option_groups" in element:
        return [o for g in element["option_groups"] for o in g["options"]]
    return list(element.get("options", []))


def check_limits(blocks: list[dict[str, Any]], *, max_blocks: int) -> None:
    assert 1 <= len(blocks) <= max_blocks
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block_id must be unique"
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert len(block["text"]["text"]) <= t.HEADER_MAX
        elif kind == "section":
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= t.SECTION_TEXT_MAX
            fields = block.get("fields", [])
            assert len(fields) <= t.SECTION_FIELDS_MAX
            assert all(len(f["text"]) <= t.SECTION_FIELD_TEXT_MAX for f in fields)
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= t.CONTEXT_ELEMENTS_MAX
            # slack_sdk does not check this one; Slack caps text objects at 3000 characters
            assert all(len(e.get("text", "")) <= t.SECTION_TEXT_MAX for e in block["elements"])
        elif kind == "actions":
            assert 1 <= len(block["elements"]) <= t.ACTIONS_ELEMENTS_MAX
            action_ids = [e["action_id"] for e in block["elements"]]
            assert len(action_ids) == len(set(action_ids)), "action_id must be unique within a block"
        elif kind == "input":
            assert len(block["label"]["text"]) <= t.LABEL_MAX
            if "hint" in block:
                assert len(block["hint"]["text"]) <= t.HINT_MAX
        for key in ("block_id",):
            assert len(block.get(key, "")) <= t.ID_MAX
    for d in walk(blocks):
        if "action_id" in d:
            assert len(d["action_id"]) <= t.ID_MAX
        if "placeholder" in d:
            assert len(d["placeholder"]["text"]) <= t.PLACEHOLDER_MAX
        kind = d.get("type")
        if kind == "plain_text_input":
            assert 1 <= d.get("max_length", t.INPUT_MAX_LENGTH) <= t.INPUT_MAX_LENGTH
            if "initial_value" in d:
                assert len(d["initial_value"]) <= d.get("max_length", t.INPUT_MAX_LENGTH)
        if kind == "button":
            assert 0 < len(d["text"]["text"]) <= t.BUTTON_TEXT_MAX
            assert len(d.get("value", "")) <= t.BUTTON_VALUE_MAX
            assert len(d.get("url", "")) <= t.BUTTON_URL_MAX
        if kind in ("static_select", "multi_static_select", "checkboxes", "radio_buttons"):
            options = _options(d)
            assert 1 <= len(d.get("options", d.get("option_groups", []))) <= t.SELECT_OPTIONS_MAX
            for o in options:
                assert 0 < len(o["text"]["text"]) <= t.OPTION_TEXT_MAX
                assert 0 < len(o["value"]) <= t.OPTION_VALUE_MAX
            if "initial_option" in d:
                assert d["initial_option"] in options, "Slack rejects an initial_option it doesn't offer"
            for o in d.get("initial_options", []):
                assert o in options


def validate_view(view: dict[str, Any]) -> None:
    """slack_sdk's validation plus our own walk; the view must also survive a JSON round trip."""
    View(**json.loads(json.dumps(view))).validate_json()
    check_limits(view["blocks"], max_blocks=t.MODAL_BLOCKS_MAX)
    assert len(view.get("private_metadata", "")) <= t.PRIVATE_METADATA_MAX
    assert 0 < len(view["title"]["text"]) <= t.MODAL_TITLE_MAX


def validate_message(message: dict[str, Any]) -> None:
    assert message["text"], "a message needs fallback text for notifications"
    assert len(message["text"]) <= t.MESSAGE_TEXT_MAX
    blocks = message.get("blocks")
    if blocks is None:
        return
    for block in blocks:
        parsed = Block.parse(json.loads(json.dumps(block)))
        assert parsed is not None, block
        parsed.validate_json()
    check_limits(blocks, max_blocks=t.MESSAGE_BLOCKS_MAX)
