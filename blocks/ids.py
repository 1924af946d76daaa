"""Slack identifiers the app and Slack exchange: callback ids, action ids, block ids, commands.

These values are how Slack routes payloads back to the app: renaming one breaks messages and modals
that are already open in people's clients, so change them only together with a compatibility listener.
"""

from __future__ import annotations

from enum import StrEnum


class CallbackId(StrEnum):
    """`callback_id` of shortcuts and views."""

    SA_REQUEST = "sa_request"  # global shortcut
    SA_REQUEST_FROM_MESSAGE = "sa_request_from_message"  # message shortcut, prefills from the message
    SA_REQUEST_MODAL = "sa_request_modal"
    NEEDS_INFO_MODAL = "sa_needs_info_modal"
    DECLINE_MODAL = "sa_decline_modal"
    GITLAB_USERNAME_MODAL = "sa_gitlab_username_modal"
    ANSWER_MODAL = "sa_answer_modal"
    BREACH_REASON_MODAL = "sa_breach_reason_modal"
    EXPEDITE_MODAL = "sa_expedite_modal"


class ActionId(StrEnum):
    """`action_id` of interactive elements on messages (the request card, DMs)."""

    CLAIM = "claim"
    UNCLAIM = "unclaim"
    STATUS = "status"
    NEEDS_INFO = "needs_info"
    DECLINE = "decline"
    ASSIGN = "assign"
    ANSWER = "answer_needs_info"
    OPEN_ISSUE = "open_issue"  # a link button; Slack still sends block_actions for it, ack and ignore
    RECORD_BREACH_REASON = "record_breach_reason"  # on the leaders' breach post: opens the reason modal
    EXPEDITE = "expedite_request"  # on the card: a leader or the claimer expedites (or stops); opens a modal


class Field(StrEnum):
    """The request modal's fields; in the modal, `block_id` == `action_id` == the field name."""

    REQUEST_TYPE = "request_type"
    QUEUE = "queue"
    CUSTOMER_NAME = "customer_name"
    OPPORTUNITY = "opportunity"
    COMMAND_PLAN_URL = "command_plan_url"
    WHY_NOW = "why_now"
    PAIN = "pain"
    CHAMPION = "champion"
    ASKS = "asks"
    HOSTING = "hosting"
    PREFERRED_DATE_1 = "preferred_date_1"
    PREFERRED_DATE_2 = "preferred_date_2"
    MEETING_OBJECTIVE = "meeting_objective"
    CAPABILITIES = "capabilities"
    CURRENT_TOOLS = "current_tools"
    ADDITIONAL_CONTEXT = "additional_context"
    PARENT_REQUEST = "parent_request"
    EXPEDITE = "expedite"
    EXPEDITE_REASON = "expedite_reason"
    EVENT_NAME = "event_name"
    EVENT_LOCATION = "event_location"
    EVENT_COMPETENCY = "event_competency"
    EVENT_DATE = "event_date"


class Input(StrEnum):
    """Inputs of the small modals (needs info, decline, answer, GitLab username, breach reason).

    As in the request modal, `block_id` == `action_id` == the input name.
    """

    QUESTION = "question"
    REASON = "reason"
    ANSWER = "answer"
    GITLAB_USERNAME = "gitlab_username"
    BREACH_REASON = "breach_reason"
    BREACH_NOTE = "breach_note"
    EXPEDITE_WHY = "expedite_why"


class BreachReason(StrEnum):
    """Option values of the breach reason select."""

    CAPACITY = "capacity"
    NO_CONTEXT = "no_context"
    LATE_TRIAGE = "late_triage"
    OTHER = "other"


class SlashCommand(StrEnum):
    SA_SLA = "/sa-sla"


# The single option value of the `expedite` checkboxes (the field is a checkboxes element with one option).
EXPEDITE_OPTION = "expedite"
