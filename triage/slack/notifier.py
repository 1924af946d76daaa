"""Posts to Slack for the worker: cards, thread replies, DMs. Slack errors become RetryLater or Rejected."""

from __future__ import annotations

import logging
import time
import urllib.error
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from blocks.ids import ActionId
from blocks.request_card import CardData, landed_dm, needs_info_dm, queued_dm, request_card
from blocks.text import escape
from triage.config import Config
from triage.core import sla
from triage.core.errors import Rejected, RetryLater
from triage.models import Request, RequestEvent
from triage.services import SlackUser
from triage.slack.home import render_home  # the same view the app_home_opened listener publishes

log = logging.getLogger(__name__)

# Slack "ok": false errors that mean "try again later" rather than "this will never work".
_TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
              "request_timeout", "team_added_to_org"}
# find_card reads at most HISTORY_PAGES pages of HISTORY_PAGE messages (Slack's maximum page is 999): under
# conversations.history's Tier 3 limit a lookup that needs several pages is refused part-way and starts
# over on its retry, so few, large pages (seen at scale: 66 lookups starved for minutes with pages of 200).
HISTORY_PAGE = 999
HISTORY_PAGES = 5
USER_INFO_TTL = 300.0  # seconds a users.info answer is reused
CARD_EVENT_TYPE = "triage_request"  # message metadata that lets a retry find a card it already posted
LINK_GITLAB_ACTION = "link_gitlab"  # opens the GitLab username modal


def call(fn, /, **kwargs) -> Any:
    """Call a WebClient method, translating failures into the app's delivery errors."""
    try:
        return fn(**kwargs)
    except SlackApiError as e:
        status = e.response.status_code
        error = e.response.get("error") if isinstance(e.response.data, dict) else None
        if status == 429 or error == "ratelimited":
            retry_after = e.response.headers.get("Retry-After") or e.response.headers.get("retry-after")
            raise RetryLater(f"Slack rate limit ({fn.__name__})",
                             float(retry_after) if retry_after else None, applied=False) from None
        if status >= 500 or error in _TRANSIENT:
            raise RetryLater(f"Slack {fn.__name__}: {error or status}") from None
        raise Rejected(f"Slack {fn.__name__}: {error or status}") from None
    except (SlackClientError, urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        raise RetryLater(f"Slack unreachable ({fn.__name__}): {e.__class__.__name__}") from None


def card_data(request: Request, config: Config, *, events: Sequence[RequestEvent] = (),
              now: datetime | None = None) -> CardData:
    now = now or datetime.now(UTC)
    f = request.details
    queue = config.queue(request.queue)
    policy = config.policy(request.queue)
    left = None
    if request.status == "open":
        left = sla.humanize_left(request.deadline, now)
    claimed_after = None
    if request.allocated_at:
        claimed_after = f"allocated after {sla.format_duration(request.allocated_at - request.created_at)}"
    earlier = next((e for e in events if e.kind == "opportunity_sa"), None)
    return CardData(
        request_id=str(request.id), reference=request.reference, request_type=request.request_type,
        queue_name=queue.name if queue else request.queue, customer_name=request.customer_name,
        requester=request.requester, asks=f.asks, why_now=f.why_now,
        pain=f.pain, champion=f.champion, hosting=f.hosting,
        opportunity_id=request.opportunity_id, expedite=request.expedite,
        expedite_reason=f.expedite_reason, event_name=f.event_name, event_date=f.event_date,
        event_location=f.event_location, preferred_dates=f.preferred_dates,
        deadline=request.deadline, queue_tz=queue.timezone if queue else None, time_left_text=left,
        issue_url=request.gitlab_url, status=request.status, owner=request.owner, claimed_after_text=claimed_after,
        history=tuple(_history_line(e) for e in events if e.kind in _HISTORY_KINDS),
        opportunity_url=config.salesforce.opportunity_url(request.opportunity_id),
        sla_text=policy.describe(request.request_type, request.expedite, request.created_at, request.deadline,
                                 event_date=f.event_date) if policy else None,
        short_notice=bool(policy and policy.short_notice(request.request_type, f.event_date, request.created_at)),
        opportunity_sa=earlier.detail.get("sa") if earlier else None,
        opportunity_sa_ref=earlier.detail.get("earlier") if earlier else None,
        salesforce_verified=request.salesforce_verified, technical_outcome=request.technical_outcome,
        outcome_evidence=request.outcome_evidence,
    )


_HISTORY_KINDS = {"claimed", "assigned", "unclaimed", "status", "needs_info", "answered", "declined",
                  "reopened", "closed", "expedited", "unexpedited"}


def _history_line(e: RequestEvent) -> str:
    who = f"<@{e.actor}>" if e.actor and e.actor[:1] in "UW" else escape(e.actor or "someone")
    what = {"claimed": "claimed it", "assigned": f"assigned <@{e.detail.get('to')}>",
            "unclaimed": "returned it to the queue", "status": f"set status {e.detail.get('status')}",
            "needs_info": "asked for more information", "answered": "answered",
            "declined": "declined it", "reopened": "reopened it", "closed": "closed it",
            "expedited": "expedited it", "unexpedited": "stopped expediting it"}.get(e.kind, e.kind)
    via = " (GitLab)" if e.source == "gitlab" else ""
    return f"{e.at:%d %b %H:%M} UTC · {who} {what}{via}"


class SlackNotifier:
    """The worker's Slack side; one WebClient with no retry handlers (the outbox does the retrying)."""

    def __init__(self, client: WebClient, config: Config):
        self.client = client
        self.config = config
        self._users: dict[str, tuple[SlackUser, float]] = {}
        self._held: dict[str, float] = {}  # rate limit -> monotonic time its Retry-After ends

    def _call(self, fn, /, **kwargs) -> Any:
        """`call`, but once Slack answered 429 for a rate limit, every call under that limit waits out its
        Retry-After here (refused at once, as if Slack had said so) instead of asking Slack again: the
        outbox's entries are retried one by one, and each would otherwise spend a call to learn the same
        thing. Held per method: a 429 does not say which limit it hit (chat.postMessage has one per channel
        and one for the workspace), so the whole method waits."""
        name = key = getattr(fn, "__name__", str(fn))
        left = self._held.get(key, 0.0) - time.monotonic()
        if left > 0:
            raise RetryLater(f"Slack rate limit ({name}), holding back", left, applied=False)
        try:
            return call(fn, **kwargs)
        except RetryLater as e:
            if e.applied is False and e.retry_after:
                self._held[key] = time.monotonic() + e.retry_after
            raise

    def user_info(self, user: str) -> SlackUser:
        """Name, time zone and email, remembered for a few minutes: an AE who files ten requests in a burst
        costs one users.info (Tier 4, about 100 a minute), not ten."""
        cached = self._users.get(user)
        if cached and time.monotonic() - cached[1] < USER_INFO_TTL:
            return cached[0]
        u = self._call(self.client.users_info, user=user)["user"]
        profile = u.get("profile") or {}
        name = profile.get("real_name") or u.get("real_name") or u.get("name") or user
        found = SlackUser(id=user, name=name, tz=u.get("tz") or "UTC", email=profile.get("email"))
        self._users[user] = (found, time.monotonic())
        return found

    def post_card(self, request: Request, events: Sequence[RequestEvent]) -> str:
        msg = request_card(card_data(request, self.config, events=events))
        res = self._call(self.client.chat_postMessage, channel=request.slack_channel, unfurl_links=False,
                   metadata={"event_type": CARD_EVENT_TYPE, "event_payload": {"request_id": str(request.id)}},
                   **msg)
        return res["ts"]

    def find_card(self, request: Request) -> str | None:
        """The card an earlier, interrupted attempt posted, found by its metadata; None if there is none."""
        oldest = (request.created_at - timedelta(minutes=1)).timestamp()
        cursor = None
        # Newest first, a page at a time: in a busy channel (a burst of hundreds of requests) the card can
        # be further back than one page, and missing it would post it twice.
        for _ in range(HISTORY_PAGES):
            try:
                res = self._call(self.client.conversations_history, channel=request.slack_channel,
                                 oldest=f"{oldest:.6f}", include_all_metadata=True, limit=HISTORY_PAGE,
                                 **({"cursor": cursor} if cursor else {}))
            except Rejected as e:  # e.g. missing channels:history scope: we can't look, so post
                log.warning("can't look for an earlier card of %s: %s", request.reference, e)
                return None
            for m in res.get("messages") or []:
                meta = m.get("metadata") or {}
                if meta.get("event_type") == CARD_EVENT_TYPE and \
                        str((meta.get("event_payload") or {}).get("request_id")) == str(request.id):
                    return m["ts"]
            cursor = (res.get("response_metadata") or {}).get("next_cursor")
            if not res.get("has_more") or not cursor:
                return None
        raise RetryLater(f"{request.reference}: more than {HISTORY_PAGES * HISTORY_PAGE} messages to look through for "
                         "its card; trying again later")

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return self._call(self.client.chat_getPermalink, channel=channel, message_ts=ts).get("permalink")
        except Rejected:
            return None

    def dm_landed(self, request: Request) -> None:
        link = self.permalink(request.slack_channel, request.slack_ts) if request.slack_ts else None
        self._call(self.client.chat_postMessage, channel=request.requester, unfurl_links=False,
             **landed_dm(card_data(request, self.config), link))

    def dm_queued(self, request: Request, service: str) -> None:
        self._call(self.client.chat_postMessage, channel=request.requester, **queued_dm(request.reference, service))

    def update_card(self, request: Request, events: Sequence[RequestEvent]) -> None:
        msg = request_card(card_data(request, self.config, events=events))
        self._call(self.client.chat_update, channel=request.slack_channel, ts=request.slack_ts, **msg)

    def thread_reply(self, channel: str, thread_ts: str, text: str) -> None:
        self._call(self.client.chat_postMessage, channel=channel, thread_ts=thread_ts, text=text, unfurl_links=False)

    def post(self, channel: str, text: str, *, breach_request_id: int | None = None) -> None:
        blocks = None
        if breach_request_id is not None:  # the leaders' breach post: a button to record why it was missed
            blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
                      {"type": "actions", "elements": [{
                          "type": "button", "action_id": ActionId.RECORD_BREACH_REASON.value,
                          "text": {"type": "plain_text", "text": "Record why it was missed"},
                          "value": str(breach_request_id)}]}]
        self._call(self.client.chat_postMessage, channel=channel, text=text, unfurl_links=False,
             **({"blocks": blocks} if blocks else {}))

    def dm_text(self, user: str, text: str) -> None:
        self._call(self.client.chat_postMessage, channel=user, text=text, unfurl_links=False)

    def dm_needs_info(self, request: Request, question: str, asked_by: str | None) -> None:
        self._call(self.client.chat_postMessage, channel=request.requester,
             **needs_info_dm(request.reference, str(request.id), question, asked_by))

    def publish_home(self, user: str, content: Any, now: datetime) -> None:
        call(self.client.views_publish, user_id=user, view=render_home(content, self.config, now))

    def ask_gitlab_username(self, request: Request, user: str, why: str) -> None:
        """Ask the SA, once and only them, for their GitLab username (the claim stands meanwhile)."""
        text = (f"I couldn't find your GitLab account ({escape(why)}), so {request.reference} is yours in Slack "
                "but not assigned on GitLab yet. Tell me your GitLab username once and I'll assign it.")
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": [{"type": "button", "action_id": LINK_GITLAB_ACTION,
                                              "text": {"type": "plain_text", "text": "Give GitLab username"},
                                              "value": str(request.id)}]},
        ]
        self._call(self.client.chat_postEphemeral, channel=request.slack_channel, user=user, text=text, blocks=blocks)
