"""The technical outcome modal: asked of the SA when a request is marked done, and a leader's correction."""

from __future__ import annotations

from typing import Any

from blocks.ids import CallbackId, Input
from blocks.text import escape, mrkdwn, plain
from triage.core.opportunity import EVIDENCE_MAX, OUTCOME_LABELS, Outcome

_DESCRIPTIONS = {
    Outcome.TECHNICAL_WIN: "Their technical evaluators endorsed us in writing",
    Outcome.TECHNICAL_LOSS: "They chose another vendor on technical grounds",
    Outcome.WITHDREW: "We chose not to compete (counted in the honest win rate)",
    Outcome.NOT_APPLICABLE: "No evaluation: a questionnaire, an event, a quick question",
}


def _option(outcome: Outcome) -> dict[str, Any]:
    return {"text": plain(OUTCOME_LABELS[outcome], 75), "value": outcome.value,
            "description": plain(_DESCRIPTIONS[outcome], 75)}


def outcome_modal(request_id: str, *, reference: str | None = None, customer: str | None = None,
                  outcome: str | None = None, evidence: str | None = None, correcting: bool = False) -> dict:
    """Radio buttons for the four outcomes and a few lines of evidence ("who validated what")."""
    radio: dict[str, Any] = {"type": "radio_buttons", "options": [_option(o) for o in Outcome]}
    if outcome in set(Outcome):
        radio["initial_option"] = _option(Outcome(outcome))
    text_input: dict[str, Any] = {
        "type": "plain_text_input", "multiline": True, "max_length": EVIDENCE_MAX,
        "placeholder": plain("e.g. Dana Lee (VP Platform) and the security lead confirmed SSO, audit trail and "
                             "pipeline speed in the evaluation scorecard", 150),
    }
    if evidence:
        text_input["initial_value"] = evidence[:EVIDENCE_MAX]
    about = f"Request *{escape(reference)}*" if reference else "This request"
    if customer:
        about += f" · {escape(customer)}"
    blocks = [
        {"type": "context", "elements": [mrkdwn(about + (" · correcting the recorded outcome" if correcting
                                                            else " is done: how did the technical work end?"))]},
        {"type": "input", "block_id": Input.OUTCOME.value, "label": plain("Technical outcome"), "optional": False,
         "element": {**radio, "action_id": Input.OUTCOME.value}},
        {"type": "input", "block_id": Input.EVIDENCE.value, "label": plain("Evidence: who validated what"),
         "optional": True, "element": {**text_input, "action_id": Input.EVIDENCE.value},
         "hint": plain("The stakeholders and the success criteria they confirmed, in a few lines. Needed for a "
                       "win, a loss or a withdrawal; it goes on the GitLab issue.", 2000)},
    ]
    return {"type": "modal", "callback_id": CallbackId.OUTCOME_MODAL.value, "title": plain("Technical outcome"),
            "submit": plain("Save"), "close": plain("Later"), "private_metadata": request_id, "blocks": blocks}
