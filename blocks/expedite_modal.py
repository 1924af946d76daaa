"""The modal that asks why a request is expedited from its card (a leader or the claimer clicked Expedite)."""

from __future__ import annotations

from typing import Any

from blocks.ids import CallbackId, Input
from blocks.text import escape, mrkdwn, plain

REASON_MAX = 1000


def expedite_modal(request_id: str, *, reference: str | None = None) -> dict[str, Any]:
    """Ask for the reason; `private_metadata` carries the request id back to the submission."""
    blocks: list[dict[str, Any]] = []
    if reference:
        blocks.append({"type": "context", "elements": [mrkdwn(f"Request *{escape(reference)}*")]})
    blocks.append({
        "type": "input", "block_id": Input.EXPEDITE_WHY.value, "label": plain("Why expedite it?"),
        "element": {"type": "plain_text_input", "action_id": Input.EXPEDITE_WHY.value, "multiline": True,
                    "max_length": REASON_MAX},
        "hint": plain("It gets the shorter expedite SLA (never a longer one); the reason goes in the thread "
                      "and on the issue."),
    })
    return {"type": "modal", "callback_id": CallbackId.EXPEDITE_MODAL.value, "title": plain("Expedite request"),
            "submit": plain("Expedite"), "close": plain("Cancel"), "private_metadata": request_id,
            "blocks": blocks}
