"""The shapes every modal shares: the view itself, an input block, an option, text as sections.

Limits are Slack's (https://docs.slack.dev/reference/views/modal-views and
https://docs.slack.dev/reference/block-kit/blocks/input-block); `blocks.text` holds the numbers.
Every input block has `block_id` == `action_id` == the field (or input) name, so a view_submission's
`view.state.values[name][name]` holds each answer.
"""

from __future__ import annotations

from typing import Any

from blocks.ids import CallbackId
from blocks.text import (
    HINT_MAX,
    MODAL_BLOCKS_MAX,
    MODAL_BUTTON_MAX,
    MODAL_TITLE_MAX,
    OPTION_TEXT_MAX,
    PRIVATE_METADATA_MAX,
    SECTION_TEXT_MAX,
    chunks,
    mrkdwn,
    plain,
)

MODAL_TITLE = "SA Request"


def option(value: str, text: str) -> dict[str, Any]:
    """A select/checkbox option; Slack needs `initial_option` to equal one of these exactly."""
    return {"text": plain(text, OPTION_TEXT_MAX), "value": value}


def input_block(
    name: str, label: str, element: dict[str, Any], *, optional: bool, hint: str | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": name,
        "label": plain(label, 2000),
        "optional": optional,
        "element": {**element, "action_id": name},
    }
    if hint:
        block["hint"] = plain(hint, HINT_MAX)
    return block


def modal(
    callback_id: CallbackId | None,
    title: str,
    blocks: list[dict[str, Any]],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    private_metadata: str = "",
) -> dict[str, Any]:
    if len(private_metadata) > PRIVATE_METADATA_MAX:
        # Losing part of it would route the submission wrongly; the caller must keep it small.
        raise ValueError(f"private_metadata is {len(private_metadata)} characters; Slack allows 3000")
    if not 1 <= len(blocks) <= MODAL_BLOCKS_MAX:
        raise ValueError(f"a modal holds 1..{MODAL_BLOCKS_MAX} blocks, not {len(blocks)}")
    view: dict[str, Any] = {
        "type": "modal",
        "title": plain(title, MODAL_TITLE_MAX),
        "close": plain(close, MODAL_BUTTON_MAX),
        "blocks": blocks,
    }
    if callback_id is not None:
        view["callback_id"] = callback_id.value
    if submit:
        view["submit"] = plain(submit, MODAL_BUTTON_MAX)
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


def sections(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": mrkdwn(part)} for part in chunks(text, SECTION_TEXT_MAX)]
