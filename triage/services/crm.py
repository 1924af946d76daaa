"""Salesforce in the loop: check the opportunity while Slack waits, prefill, write back, set the Primary SA.

The use cases reach Salesforce only through the ``Crm`` port (filled with ``triage.salesforce_crm``):

* ``check_opportunity`` runs on the modal's ack path with a hard budget (``[salesforce] lookup_seconds``);
  an outage or a slow answer never blocks a submission: the request is stored "not verified".
* After a request is stored, a ``salesforce_writeback`` outbox entry writes what the AE typed into the
  Command Plan fields Salesforce still has blank (read, then one PATCH; a redelivery writes nothing twice),
  and the AE is told what was added, or what Salesforce refused.
* A claim or assignment enqueues ``salesforce_primary_sa`` (the SA, found by email); an unclaim clears the
  field if it still names the SA who returned the request. Entries of one request run in order, so a claim,
  an unclaim and another claim end with the last SA, one PATCH each.

These outbox kinds are delivered by ``deliver_salesforce_due`` (the worker calls it next to ``deliver_due``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from triage import outbox, repo
from triage.core.errors import DeliveryError, Rejected, RetryLater
from triage.core.opportunity import OpportunityRecord, check_opportunity
from triage.core.salesforce import InvalidSalesforceId, parse_opportunity_id
from triage.core.slack_text import escape
from triage.db import session_scope
from triage.models import OutboxEntry, Request, UserLink
from triage.services.base import ServiceBase
from triage.services.ports import Notifier

log = logging.getLogger(__name__)

WRITEBACK = outbox.Kind.SALESFORCE_WRITEBACK
PRIMARY_SA = outbox.Kind.SALESFORCE_PRIMARY_SA
VERIFY = outbox.Kind.SALESFORCE_VERIFY  # a request stored "not verified": check it once Salesforce answers
SALESFORCE_KINDS = outbox.SALESFORCE_KINDS

FIELD_NAMES = {"why_now": "Why Now", "pain": "Identified Pain", "champion": "Champion",
               "command_plan_url": "Technical Close Plan link"}


class Crm(Protocol):
    fields: dict[str, str]
    primary_sa_field: str | None

    def opportunity(self, opportunity_id: str, *, budget: float | None = None,
                    fresh: bool = False) -> OpportunityRecord | None: ...
    def fill_blank(self, opportunity_id: str, values: Mapping[str, str]) -> dict[str, str]: ...
    def user_id_by_email(self, email: str) -> str | None: ...
    def set_primary_sa(self, opportunity_id: str, user_id: str | None) -> None: ...
    def primary_sa(self, opportunity_id: str) -> str | None: ...


@dataclass(frozen=True)
class OpportunityCheck:
    """The modal's answer: ``error`` for the opportunity field, else ``verified`` (None = not checked)."""

    verified: bool | None
    error: str | None = None
    record: OpportunityRecord | None = None
    problem: str | None = None  # why it could not be verified (logged; the card just says "not verified")
    prefill: dict[str, str] = field(default_factory=dict)


class CrmMixin(ServiceBase):
    crm: Crm | None = None

    def set_crm(self, crm: Crm | None) -> None:
        self.crm = crm

    # -- the ack path ---------------------------------------------------------------------------------

    def check_opportunity(self, typed: str | None, *, budget: float | None = None,
                          request_type: str = "opportunity") -> OpportunityCheck:
        """Look the opportunity up within the budget. Never raises: trouble means "not verified".

        An SA activity (`opportunity` request) needs an open opportunity at or past the qualified stage; a
        follow-up or a security assessment may concern a deal already won, so for them it need only exist.
        """
        if self.crm is None or not typed:
            return OpportunityCheck(verified=None)
        try:
            opportunity_id = parse_opportunity_id(typed)
        except InvalidSalesforceId:
            return OpportunityCheck(verified=None)  # the form's own rule reports a malformed id
        sf = self.config.salesforce
        try:
            record = self.crm.opportunity(opportunity_id, budget=budget if budget is not None else sf.lookup_seconds)
        except DeliveryError as e:
            log.warning("Salesforce lookup of %s failed, request stored as not verified: %s", opportunity_id, e)
            return OpportunityCheck(verified=False, problem=str(e))
        shown = typed.strip() if len(typed.strip()) in (15, 18) else opportunity_id
        if request_type == "opportunity":
            error = check_opportunity(record, shown, stages=sf.stages, min_stage=sf.min_stage)
        else:
            error = check_opportunity(record, shown) if record is None else None
        if error:
            return OpportunityCheck(verified=True, error=error, record=record)
        return OpportunityCheck(verified=True, record=record, prefill=self.prefill_of(record))

    @staticmethod
    def prefill_of(record: OpportunityRecord | None) -> dict[str, str]:
        """Modal values Salesforce can give: the customer (the account's name) and the Command Plan fields."""
        if record is None:
            return {}
        out = {k: v.strip() for k, v in record.values.items() if v and v.strip()}
        if record.account_name:
            out["customer_name"] = record.account_name
        return out

    # -- hooks called inside the use cases' transactions --------------------------------------------

    def _salesforce_on(self) -> bool:
        settings = getattr(self, "settings", None)
        return bool(settings is not None and settings.salesforce_configured)

    def _salesforce_after_submit(self, request: Request, now: datetime) -> list[dict[str, Any]]:
        """The Salesforce entries a new request needs (rows for outbox.enqueue_all, stored with the rest of
        its entries in one statement): verify its Opportunity, write the prefilled fields back."""
        if not self._salesforce_on() or not request.opportunity_id:
            return []
        entries = []
        if request.salesforce_verified is False:
            entries.append(outbox.entry(kind=VERIFY, lane=outbox.Lane.SALESFORCE, key=("sf_verify", request.id),
                                        request_id=request.id, now=now))
        prefill = self.config.salesforce.fields.prefill()
        if prefill and any(str(request.fields.get(k) or "").strip() for k in prefill):
            entries.append(outbox.entry(kind=WRITEBACK, lane=outbox.Lane.SALESFORCE,
                                        key=("sf_writeback", request.id), request_id=request.id, now=now))
        return entries

    def _salesforce_owner_changed(self, s, request: Request, *, owner: str | None, previous: str | None,
                                  event_id: int, now: datetime) -> None:
        if not self._salesforce_on() or not request.opportunity_id or not self.config.salesforce.fields.primary_sa:
            return
        outbox.enqueue(s, kind=PRIMARY_SA, lane=outbox.Lane.SALESFORCE, key=("sf_primary", request.id, event_id),
                       request_id=request.id, payload={"user": owner, "previous": previous}, now=now)

    # -- delivery -------------------------------------------------------------------------------------

    def deliver_salesforce_due(self, *, crm: Crm | None = None, notifier: Notifier | None = None,
                               now: datetime | None = None, limit: int = 50) -> tuple[int, int, int]:
        """Deliver due Salesforce entries (one per request and batch, in order); (claimed, delivered, retried).

        Without a Crm (Salesforce not configured in this process) they wait, like GitLab's without a token.
        """
        crm = crm or self.crm
        if crm is None:
            return 0, 0, 0
        now = now or self.now()
        delivered = retried = 0
        entries = outbox.claim_due(self.engine, now=now, limit=limit, kinds=list(SALESFORCE_KINDS))
        for entry in entries:
            try:
                if entry.kind == VERIFY:
                    self._do_salesforce_verify(entry, crm, now)
                elif entry.kind == WRITEBACK:
                    self._do_salesforce_writeback(entry, crm, now)
                else:
                    self._do_salesforce_primary_sa(entry, crm, notifier, now)
                delivered += 1
            except RetryLater as e:
                when = outbox.retry(self.engine, entry, now=now, error=str(e), retry_after=e.retry_after)
                log.warning("outbox %s %s for request %s: %s; retrying at %s", entry.id, entry.kind,
                            entry.request_id, e, when.isoformat())
                retried += 1
            except DeliveryError as e:
                outbox.retry(self.engine, entry, now=now, error=f"refused: {e}", retry_after=outbox.BACKOFF_CAP)
                log.error("outbox %s %s for request %s refused: %s", entry.id, entry.kind, entry.request_id, e)
                retried += 1
            except Exception as e:  # a bug must not stop the other entries; the entry waits, with an id to find
                error_id = uuid.uuid4().hex[:8]
                log.exception("outbox %s %s failed unexpectedly (error id %s)", entry.id, entry.kind, error_id)
                outbox.retry(self.engine, entry, now=now, error=f"unexpected error {error_id}: {e!r}")
                retried += 1
        return len(entries), delivered, retried

    def _finish(self, entry: OutboxEntry, now: datetime, *, event: tuple[str, dict[str, Any]] | None = None,
                dm: str | None = None, thread: str | None = None, request: Request | None = None) -> None:
        with session_scope(self.engine) as s:
            if event is not None and entry.request_id:
                repo.add_event(session=s, request_id=entry.request_id, kind=event[0], source="salesforce", at=now,
                               **event[1])
            if dm and request is not None:
                outbox.enqueue(s, kind=outbox.Kind.DM, key=("sf_dm", entry.id),
                               request_id=request.id, payload={"user": request.requester, "text": dm}, now=now)
            if thread and request is not None:
                outbox.enqueue(s, kind=outbox.Kind.THREAD_REPLY, key=("sf_thread", entry.id), request_id=request.id,
                               payload={"text": thread}, now=now)
            outbox.complete(s, entry.id, now=now)
        self._wake()

    def _do_salesforce_verify(self, entry: OutboxEntry, crm: Crm, now: datetime) -> None:
        """Salesforce is answering again: check the request it could not check when it was submitted."""
        request = self._load(entry)
        if not request.opportunity_id or request.salesforce_verified is not False:
            self._finish(entry, now)
            return
        record = crm.opportunity(request.opportunity_id, fresh=True)
        sf = self.config.salesforce
        if request.request_type == "opportunity":
            error = check_opportunity(record, request.opportunity_id, stages=sf.stages, min_stage=sf.min_stage)
        else:
            error = check_opportunity(record, request.opportunity_id) if record is None else None
        if error:
            # Stored already, and an SA may be on it: say what Salesforce says, leave the decision to people.
            self._finish(entry, now, request=request, event=("salesforce_check_failed", {"error": error}),
                         thread=f":warning: Checked in Salesforce after the fact: {escape(error)}.")
            return
        with session_scope(self.engine) as s:
            s.execute(sa.update(Request).where(Request.id == request.id).values(salesforce_verified=True))
            outbox.enqueue(s, kind=outbox.Kind.CARD_UPDATE, key=("sf_card", entry.id),
                           request_id=request.id, now=now)
        self._finish(entry, now, event=("salesforce_verified", {}))

    def _do_salesforce_writeback(self, entry: OutboxEntry, crm: Crm, now: datetime) -> None:
        request = self._load(entry)
        values = {k: str(request.fields[k]).strip() for k in crm.fields if str(request.fields.get(k) or "").strip()}
        if not request.opportunity_id or not values:
            self._finish(entry, now)
            return
        try:
            wrote = crm.fill_blank(request.opportunity_id, values)
        except Rejected as e:
            # A validation rule or field security refused it: retrying the same text won't help, so the AE
            # is told what Salesforce said and the entry is done.
            self._finish(entry, now, request=request, event=("salesforce_refused", {"error": str(e)[:500]}),
                         dm=f"Salesforce did not take the Command Plan details of *{request.reference}* "
                            f"({escape(request.customer_name)}): {escape(str(e))}. Please add them to the "
                            "opportunity yourself.")
            return
        if not wrote:
            self._finish(entry, now, event=("salesforce_written", {"fields": []}))
            return
        names = ", ".join(FIELD_NAMES.get(k, k) for k in wrote)
        self._finish(entry, now, request=request, event=("salesforce_written", {"fields": sorted(wrote)}),
                     dm=f"Added to the opportunity's Command Plan in Salesforce from *{request.reference}*: "
                        f"{names}.")

    def _salesforce_user(self, slack_user: str, crm: Crm, notifier: Notifier | None, now: datetime) -> str | None:
        with session_scope(self.engine) as s:
            link = repo.get_user_link(session=s, slack_user=slack_user)
            if link and link.salesforce_user_id:
                return link.salesforce_user_id
            email = link.email if link else None
        if email is None:
            if notifier is None:
                # The email (how the SA is found in Salesforce) comes from Slack: wait for Slack rather than
                # tell the thread the SA has no Salesforce user, which nobody has looked for.
                raise RetryLater(f"Slack is not configured in this worker, so {slack_user}'s email (to find "
                                 "their Salesforce user) is unknown", applied=False)
            email = notifier.user_info(slack_user).email
        if not email:
            return None
        found = crm.user_id_by_email(email)
        if found:
            with session_scope(self.engine) as s:
                link = repo.get_user_link(session=s, slack_user=slack_user) or UserLink(slack_user=slack_user)
                link.salesforce_user_id, link.email, link.updated_at = found, email, now
                s.add(link)
        return found

    def _do_salesforce_primary_sa(self, entry: OutboxEntry, crm: Crm, notifier: Notifier | None,
                                  now: datetime) -> None:
        request = self._load(entry)
        opp = request.opportunity_id
        user, previous = entry.payload.get("user"), entry.payload.get("previous")
        if not opp:
            self._finish(entry, now)
            return
        if user is None:
            # Returned to the queue: clear the field only if it still names the SA who returned it (someone
            # may have set another Primary SA in Salesforce since).
            was = self._salesforce_user(previous, crm, notifier, now) if previous else None
            current = crm.primary_sa(opp)
            if was and current and current[:15] == was[:15]:
                crm.set_primary_sa(opp, None)
                self._finish(entry, now, event=("salesforce_primary_sa", {"user": None}))
            else:
                self._finish(entry, now)
            return
        sf_user = self._salesforce_user(user, crm, notifier, now)
        if sf_user is None:
            self._finish(entry, now, request=request, event=("salesforce_primary_sa_unknown", {"user": user}),
                         thread=f"<@{user}> has no active Salesforce user with their Slack email, so the "
                                "opportunity's Primary SA was not set: please set it in Salesforce.")
            return
        crm.set_primary_sa(opp, sf_user)
        self._finish(entry, now, event=("salesforce_primary_sa", {"user": user}))
