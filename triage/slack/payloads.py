"""The Slack payloads the app reads, one typed model per kind, checked before any listener runs.

Only the fields the listeners use are declared (others are kept but not checked), with the types Slack
documents (https://docs.slack.dev/reference/interaction-payloads): a `selected_option` is an object,
a `view_submission` has `view.state`, ids are short and printable, `private_metadata` is at most 3,000
characters, a date-time picker's value is a Unix time a calendar can show. A payload that doesn't fit
is refused with a 400 naming the field (`ValidatePayload`, a Bolt middleware), so a listener never meets a
shape it didn't expect and never turns one into a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from triage.core.json_limits import DB_ID_MAX, BadJSON, clean, first_error

log = logging.getLogger(__name__)

SlackId = Annotated[str, Field(strict=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$")]
ShortText = Annotated[str, Field(strict=True, max_length=255)]
# Slack inputs hold at most 3,000 characters. The bound here is looser, so that text a little over a
# field's limit gets the field's own inline message from validation rather than a 400.
InputText = Annotated[str, Field(strict=True, max_length=20_000)]
OptionValue = Annotated[str, Field(strict=True, max_length=150)]
# Unix times between 1970 and the end of year 9999: what a calendar, and Python's datetime, can show.
UnixTime = Annotated[int, Field(strict=True, ge=0, le=253_402_300_799)]




def db_id(raw: object) -> int | None:
    """A request id from a button value, a block id or private_metadata: a positive integer the database
    can hold, else None (whatever a crafted payload puts there)."""
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= DB_ID_MAX else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class User(_Model):
    id: SlackId


class Option(_Model):
    value: OptionValue


class StateElement(_Model):
    """One input's value in `view.state.values[block_id][action_id]`."""

    type: ShortText
    value: InputText | None = None
    selected_option: Option | None = None
    selected_options: Annotated[list[Option], Field(max_length=100)] | None = None
    selected_date: Annotated[str, Field(strict=True, pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    selected_date_time: UnixTime | None = None
    selected_time: Annotated[str, Field(strict=True, pattern=r"^\d{2}:\d{2}$")] | None = None
    selected_user: SlackId | None = None
    selected_conversation: SlackId | None = None


class ViewState(_Model):
    values: Annotated[dict[ShortText, Annotated[dict[ShortText, StateElement], Field(max_length=5)]],
                      Field(max_length=100)]


class View(_Model):
    id: Annotated[str, Field(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
    callback_id: ShortText = ""
    private_metadata: Annotated[str, Field(strict=True, max_length=3000)] = ""
    hash: ShortText | None = None
    state: ViewState | None = None


class SubmittedView(View):
    state: ViewState  # a submission always carries the inputs' state


class Action(_Model):
    action_id: ShortText
    block_id: ShortText = ""
    type: ShortText = ""
    value: Annotated[str, Field(strict=True, max_length=2000)] | None = None
    selected_option: Option | None = None
    selected_user: SlackId | None = None


class Channel(_Model):
    id: SlackId


class Container(_Model):
    channel_id: SlackId | None = None
    message_ts: ShortText | None = None


class Message(_Model):
    ts: ShortText | None = None
    text: Annotated[str, Field(strict=True, max_length=40_000)] = ""


class BlockActions(_Model):
    type: Literal["block_actions"]
    user: User
    actions: Annotated[list[Action], Field(min_length=1, max_length=25)]
    trigger_id: ShortText | None = None
    view: View | None = None
    channel: Channel | None = None
    container: Container | None = None


class ViewSubmission(_Model):
    type: Literal["view_submission"]
    user: User
    view: SubmittedView


class ViewClosed(_Model):
    type: Literal["view_closed"]
    user: User
    view: View


class Shortcut(_Model):
    type: Literal["shortcut"]
    callback_id: ShortText
    trigger_id: ShortText
    user: User


class MessageShortcut(_Model):
    type: Literal["message_action"]
    callback_id: ShortText
    trigger_id: ShortText
    user: User
    channel: Channel | None = None
    message: Message | None = None


class SlashCommand(_Model):
    command: Annotated[str, Field(strict=True, max_length=64, pattern=r"^/")]
    user_id: SlackId
    text: InputText = ""
    trigger_id: ShortText | None = None
    channel_id: SlackId | None = None


class Event(_Model):
    type: ShortText
    user: SlackId | None = None


class EventCallback(_Model):
    type: Literal["event_callback"]
    event: Event


class UrlVerification(_Model):
    type: Literal["url_verification"]
    challenge: Annotated[str, Field(strict=True, max_length=255)]


KINDS: dict[str, type[_Model]] = {
    "block_actions": BlockActions, "view_submission": ViewSubmission, "view_closed": ViewClosed,
    "shortcut": Shortcut, "message_action": MessageShortcut, "event_callback": EventCallback,
    "url_verification": UrlVerification,
}


class UnreadablePayload(ValueError):
    """A Slack payload not shaped as Slack sends it; the message names the first wrong field."""


def parse_payload(body: Any) -> _Model | None:
    """The typed payload for a kind the app handles; None for kinds it doesn't (Bolt ignores those)."""
    if not isinstance(body, dict):
        raise UnreadablePayload("the payload is not an object")
    if "command" in body and "type" not in body:
        model: type[_Model] | None = SlashCommand
    else:
        kind = body.get("type")
        model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise UnreadablePayload(first_error(e, "payload")) from None


# The Bolt context key saying the payload was read with json_limits already (NUL characters removed, depth
# checked), so the middleware need not clean it again. Only the HTTP route sets it; Bolt builds the rest of
# the context from fixed fields of the payload, so a payload can't.
CLEANED = "triage_json_cleaned"


def payload_of(context: Any) -> Any:
    """The validated payload the middleware left in the listener's context."""
    return context["payload"]


class ValidatePayload(AsyncMiddleware):
    """Bolt global middleware: refuse (400) a payload that doesn't fit its kind's model, else hand the
    typed payload to the listeners as `context["payload"]`. Runs for HTTP and Socket Mode alike.

    A middleware class rather than a function: Bolt builds a function middleware's arguments by name on
    every request (some twenty candidates), which the ack path would pay for nothing."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        body, context = req.body, req.context
        try:
            if not context.get(CLEANED):
                clean(body)
            context["payload"] = parse_payload(body)
        except (UnreadablePayload, BadJSON) as e:
            log.info("refused a malformed Slack payload: %s", e)
            return BoltResponse(status=400, body=json.dumps({"error": f"malformed Slack request: {e}"}),
                                headers={"content-type": "application/json"})
        return await next()
