"""The small modals around a request: needs info, decline, answer, breach reason, GitLab username, and the
plain notices (request saved, no queues yet).

The modals about a request carry its id in `private_metadata` (unless the caller gives other metadata),
so the submission knows which request it is about, and show the request's reference on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.ids import BreachReason, CallbackId, Input
from blocks.modal_kit import MODAL_TITLE, input_block, modal, option, sections
from blocks.text import (
    INPUT_MAX_LENGTH,
    MODAL_BLOCKS_MAX,
    PLACEHOLDER_MAX,
    SECTION_TEXT_MAX,
    escape,
    mrkdwn,
    plain,
    quote,
)

BREACH_REASON_LABELS: dict[str, str] = {
    BreachReason.CAPACITY: "No SA had capacity",
    BreachReason.NO_CONTEXT: "Request lacked context",
    BreachReason.LATE_TRIAGE: "Seen too late",
    BreachReason.OTHER: "Other",
}


def no_queues_modal() -> dict[str, Any]:
    """Shown instead of the form while no queue is configured: nothing can be filed yet."""
    text = (
        "*No SA queues are set up yet*, so requests can't be filed.\n"
        "Ask the app's admin to add at least one `[[queues]]` entry to the triage config file "
        "(`TRIAGE_CONFIG`) and restart the app. Nothing you typed was lost: this form was not opened."
    )
    return modal(None, MODAL_TITLE, sections(text), close="Close")


def text_modal(title: str, text: str) -> dict[str, Any]:
    """A simple notice: `title` (clipped to 24 characters) and mrkdwn `text`; no submit button."""
    blocks = sections(text or " ")[:MODAL_BLOCKS_MAX]
    return modal(None, title or MODAL_TITLE, blocks, close="Close")


def _text_input(name: str, *, multiline: bool, limit: int, placeholder: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline, "max_length": limit}
    if placeholder:
        element["placeholder"] = plain(placeholder, PLACEHOLDER_MAX)
    return element


def _about_request(
    callback_id: CallbackId,
    title: str,
    submit: str,
    blocks: Sequence[dict[str, Any]],
    *,
    request_id: str,
    private_metadata: str,
    reference: str | None,
) -> dict[str, Any]:
    """A modal about one request: its reference on top, then `blocks`; the submission gets the request id."""
    about = [{"type": "context", "elements": [mrkdwn(f"Request *{escape(reference)}*")]}] if reference else []
    return modal(callback_id, title, [*about, *blocks], submit=submit,
                 private_metadata=private_metadata or request_id)


def _ask_text(
    callback_id: CallbackId,
    title: str,
    submit: str,
    name: str,
    label: str,
    *,
    request_id: str,
    private_metadata: str,
    reference: str | None,
    hint: str | None = None,
    before: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The common shape: a modal about a request asking for one required, multi-line text."""
    field = input_block(name, label, _text_input(name, multiline=True, limit=INPUT_MAX_LENGTH), optional=False,
                        hint=hint)
    return _about_request(callback_id, title, submit, [*before, field], request_id=request_id,
                          private_metadata=private_metadata, reference=reference)


def needs_info_modal(request_id: str, private_metadata: str = "", *, reference: str | None = None) -> dict:
    """An SA's question to the requester; the request goes to SA Waiting until they answer."""
    return _ask_text(
        CallbackId.NEEDS_INFO_MODAL, "Ask for information", "Send", Input.QUESTION, "What do you need to know?",
        hint="The requester gets this in a DM with a button to answer; the request waits meanwhile.",
        request_id=request_id, private_metadata=private_metadata, reference=reference,
    )


def decline_modal(request_id: str, private_metadata: str = "", *, reference: str | None = None) -> dict:
    """Why the request is declined; the requester sees the reason."""
    return _ask_text(
        CallbackId.DECLINE_MODAL, "Decline request", "Decline", Input.REASON, "Why decline it?",
        hint="The requester sees this, in the thread and in the GitLab issue.",
        request_id=request_id, private_metadata=private_metadata, reference=reference,
    )


def answer_modal(
    request_id: str,
    private_metadata: str = "",
    *,
    question: str | None = None,
    reference: str | None = None,
) -> dict:
    """The requester's answer to an SA's question (shown quoted when given)."""
    shown = ([{"type": "section", "text": mrkdwn("*Question*\n" + quote(question, SECTION_TEXT_MAX - 20))}]
             if question else [])
    return _ask_text(
        CallbackId.ANSWER_MODAL, "Answer the SA", "Send", Input.ANSWER, "Your answer", before=shown,
        request_id=request_id, private_metadata=private_metadata, reference=reference,
    )


def breach_reason_modal(request_id: str, private_metadata: str = "", *, reference: str | None = None) -> dict:
    """Why a request missed its SLA, for the leaders' report."""
    options = [option(value, label) for value, label in BREACH_REASON_LABELS.items()]
    blocks = [
        input_block(
            Input.BREACH_REASON,
            "Why was the SLA missed?",
            {"type": "static_select", "options": options, "placeholder": plain("Choose a reason")},
            optional=False,
        ),
        input_block(
            Input.BREACH_NOTE,
            "Note",
            _text_input(Input.BREACH_NOTE, multiline=True, limit=INPUT_MAX_LENGTH),
            optional=True,
            hint="Anything that would help avoid it next time.",
        ),
    ]
    return _about_request(CallbackId.BREACH_REASON_MODAL, "SLA missed", "Save", blocks, request_id=request_id,
                          private_metadata=private_metadata, reference=reference)


def gitlab_username_modal(private_metadata: str = "", *, email: str | None = None) -> dict:
    """Asked once when an SA's Slack email matches no GitLab user."""
    why = "We couldn't find your GitLab account"
    why += f" from your Slack email ({escape(email)})." if email else " from your Slack email."
    blocks = [
        {
            "type": "section",
            "text": mrkdwn(why + " Tell us your GitLab username once and we'll remember it."),
        },
        input_block(
            Input.GITLAB_USERNAME,
            "GitLab username",
            _text_input(
                Input.GITLAB_USERNAME, multiline=False, limit=255, placeholder="e.g. dkim (without @)"
            ),
            optional=False,
        ),
    ]
    return modal(
        CallbackId.GITLAB_USERNAME_MODAL,
        "Your GitLab username",
        blocks,
        submit="Save",
        private_metadata=private_metadata,
    )
