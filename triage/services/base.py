"""What every group of use cases shares: loading a request, and recording a change with its side effects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from triage import outbox, repo
from triage.config import Config, Settings
from triage.core.errors import InvalidTransition, Rejected
from triage.db import fetch, read_scope, session_scope
from triage.models import HomeViewer, OutboxEntry, Request, RequestEvent, ViewSubmission

NOTE_MARKER = "<!-- triage-note -->"  # on the app's own GitLab notes, so their Note Hooks post nothing
RECONCILE_INTERVAL = timedelta(minutes=5)  # how often drift repair reads each board


@dataclass(frozen=True)
class Change:
    """What a use case did, for the listener to tell the person who clicked."""

    request: Request
    changed: bool
    message: str = ""


def _mention(user: str | None) -> str:
    return f"<@{user}>" if user else "nobody"


class ServiceBase:
    """Shared helpers; the Services class mixes the use-case groups together over these."""

    engine: Engine
    settings: Settings
    config: Config
    _wake: Callable[[], None]
    now: Callable[[], datetime]
    is_leader: Callable[[str], bool]

    def get(self, request_id: int) -> Request | None:
        with read_scope(self.engine) as s:
            return repo.get_request(session=s, request_id=request_id)

    def _load(self, entry: OutboxEntry) -> Request:
        """The request an outbox entry is for; Rejected (never retried) when it no longer exists."""
        request = self.get(entry.request_id) if entry.request_id is not None else None
        if request is None:
            raise Rejected(f"request {entry.request_id} no longer exists")
        return request

    def _require(self, s, request_id: int) -> Request:

        r = repo.get_request(session=s, request_id=request_id)
        if r is None:
            raise InvalidTransition(f"There is no request {request_id}.")
        return r

    def _first_submission(self, s, view_id: str | None, what: str, now: datetime) -> bool:
        """Record a Slack view submission in this transaction; False when that view was already acted on.

        Slack view ids are unique per opened modal, so a replayed or retried submission of the same modal
        carries the same id; recorded with the change it causes, a failed attempt can still be retried.
        """
        if not view_id:
            return True
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = (insert(ViewSubmission).values(view_id=view_id[:64], callback_id=what[:64], received_at=now)
                .on_conflict_do_nothing(index_elements=["view_id"]).returning(ViewSubmission.view_id))
        return s.execute(stmt).first() is not None

    def _record(self, s, request: Request, *, kind: str, actor: str | None, source: str, now: datetime,
                thread: str | None = None, gitlab: dict[str, Any] | None = None,
                note: str | None = None, dms: Sequence[dict[str, Any]] = (), **detail: Any) -> RequestEvent:
        """The audit event plus every side effect it implies, in the same transaction."""
        event = repo.add_event(session=s, request_id=request.id, kind=kind, source=source, actor=actor, at=now,
                               **detail)
        s.flush()
        key = (request.id, event.id)  # one set of side effects per recorded event
        if gitlab is not None and source != "gitlab":
            assignee = gitlab.get("assignee")
            link = repo.get_user_link(session=s, slack_user=assignee) if assignee else None
            # A typed GitLab username is confirmed against the Slack e-mail, so it needs the e-mail too.
            if assignee and not (link and (link.gitlab_user_id or link.email)):
                outbox.enqueue(s, kind=outbox.Kind.LOOKUP_SA_EMAIL, key=("email", *key), lane=outbox.Lane.GITLAB,
                               request_id=request.id, payload={"user": assignee}, now=now)
            outbox.enqueue(s, kind=outbox.Kind.GITLAB_UPDATE, key=("gl", *key),
                           request_id=request.id, payload=gitlab, now=now)
        if note and source != "gitlab":
            outbox.enqueue(s, kind=outbox.Kind.GITLAB_NOTE, key=("note", *key),
                           request_id=request.id, payload={"body": note}, now=now)
        outbox.enqueue(s, kind=outbox.Kind.CARD_UPDATE, key=("card", *key),
                       request_id=request.id, now=now)
        if thread:
            outbox.enqueue(s, kind=outbox.Kind.THREAD_REPLY, key=("thread", *key),
                           request_id=request.id, payload={"text": thread}, now=now)
        for i, dm in enumerate(dms):
            outbox.enqueue(s, kind=outbox.Kind.DM, key=("dm", *key, i),
                           request_id=request.id, payload=dm, now=now)
        self._refresh_homes(s, request, key=key, now=now, also=(actor,) if source == "slack" else ())
        return event

    # -- the App Home of the people a change concerns

    def home_opened(self, user: str, sa_queues: Sequence[str], *, now: datetime | None = None) -> None:
        """Remember that `user` looks at the Home tab (and the queues they work as an SA), so their Home is
        published again when a request they would see there changes."""
        now = now or self.now()
        with session_scope(self.engine) as s:
            viewer = s.get(HomeViewer, user) or HomeViewer(slack_user=user)
            viewer.sa_queues, viewer.opened_at = list(sa_queues), now
            s.add(viewer)

    @staticmethod
    def _home_viewers(s) -> list[tuple[str, list[str] | None]]:
        """(user, the queues they work as an SA) of everyone who has opened the App Home."""
        return [tuple(row) for row in fetch(s, _HOME_VIEWERS)]  # type: ignore[misc]

    def _refresh_homes(self, s, request: Request, *, key: tuple, now: datetime,
                       also: Sequence[str | None] = ()) -> None:
        """Queue a views.publish for every Home viewer who sees this request (see `_home_entries`)."""
        outbox.enqueue_all(s, self._home_entries(request, self._home_viewers(s), key=key, now=now, also=also))

    def _home_entries(self, request: Request, viewers: Sequence[tuple[str, Any]], *, key: tuple, now: datetime,
                      also: Sequence[str | None] = ()) -> list[dict[str, Any]]:
        """The views.publish entries for the Home viewers (`_home_viewers`) who see this request: its AE, its
        SA, whoever acted, the SAs of its queue, and the leaders. People who never opened the Home get
        nothing. Rows for outbox.enqueue_all: one statement however many viewers there are."""
        concerned = {request.requester, request.owner, *also, *self.config.slack.leaders} - {None}
        return [outbox.entry(kind=outbox.Kind.PUBLISH_HOME, key=("home", user, *key), request_id=request.id,
                             lane=outbox.Lane.HOME, lane_key=user,
                             payload={"user": user, "sa_queues": list(queues or ())}, now=now)
                for user, queues in viewers if user in concerned or request.queue in (queues or ())]


_HOME_VIEWERS = sa.select(HomeViewer.__table__.c.slack_user, HomeViewer.__table__.c.sa_queues)
