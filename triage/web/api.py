"""/api/*: the leaders' summary as JSON and CSV, for a signed-in leader or `Authorization: Bearer`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from triage.services import Services
from triage.services import summary as sm
from triage.web.auth import Auth

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------- the documented shape


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Percentiles(_Open):
    p50: float | None
    p90: float | None


class Technical(_Open):
    """Technical outcomes of the requests received in the period: win_rate is the honest
    technical_wins / (technical_wins + technical_losses + withdrew), win_rate_excluding_withdrawals is
    technical_wins / (technical_wins + technical_losses), shown beside it so the gap shows; done counts the
    requests done, outcome_missing those done without an outcome; time_to_outcome_days is calendar days
    from the request to its outcome (nearest rank)."""

    technical_wins: int
    technical_losses: int
    withdrew: int
    not_applicable: int
    win_rate: float | None
    win_rate_excluding_withdrawals: float | None
    done: int
    outcome_missing: int
    time_to_outcome_days: Percentiles


class Figures(_Open):
    received: int
    allocated: int
    allocated_within_sla: int
    attainment: float | None
    time_to_allocate_hours: Percentiles
    open_unallocated: int
    breached_open: int
    declined: int
    needs_info: int
    needs_info_rate: float | None = None
    technical: Technical | None = None


class QueueFigures(Figures):
    queue: str
    name: str | None = None


class TypeFigures(Figures):
    request_type: str


class SaFigures(_Open):
    slack_user: str
    allocated: int
    open: int
    time_to_allocate_hours: Percentiles
    technical: Technical | None = None


class BreachReasons(_Open):
    capacity: int
    no_context: int
    late_triage: int
    other: int


class Summary(_Open):
    """Counts the requests *received* in the period (whole days, both ends included, in the reporting
    time zone); hours are on the SLA clock with paused time excluded; attainment =
    allocated_within_sla / allocated, null when nothing was allocated."""

    since: date
    until: date
    clock: str
    totals: Figures
    queues: list[QueueFigures]
    types: list[TypeFigures]
    sas: list[SaFigures]
    breach_reasons: BreachReasons


class Pair(BaseModel):
    ae: str
    sa: str
    requests: int
    claims: int


class Alignment(BaseModel):
    since: date
    until: date
    pairs: list[Pair]


# ---------------------------------------------------------------- helpers


def neutralise(cell: object) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP "CSV injection")."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_FORMULA_START) else text


class BadQuery(ValueError):
    pass


def parse_query(services: Services, queue: str | None, since: str | None, until: str | None,
                now: datetime) -> tuple[sm.Period, list[str] | None]:
    def day(name: str, value: str | None) -> date | None:
        if value in (None, ""):
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadQuery(f"{name} must be an ISO date like 2026-11-01, not {value[:40]!r}") from None

    queues = None
    if queue:
        if services.config.queue(queue) is None:
            known = ", ".join(services.config.queue_keys) or "none configured"
            raise BadQuery(f"unknown queue {queue[:64]!r} (known: {known})")
        queues = [queue]
    try:
        period = sm.period_between(day("since", since), day("until", until), services.config, now)
    except ValueError as e:
        raise BadQuery(str(e)) from None
    return period, queues


def api_router(services: Services, auth: Auth) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["reports"])

    def refuse(request: Request) -> JSONResponse | None:
        if auth.bearer_ok(request):
            return None
        viewer = auth.viewer(request)
        if viewer is None:
            return JSONResponse({"detail": "sign in to the dashboard as a leader, or send "
                                 "Authorization: Bearer <TRIAGE_API_TOKEN>"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if not auth.is_leader(viewer.user):
            return JSONResponse({"detail": "SLA summaries are for the leaders named in the config"},
                                status_code=403)
        return None

    _q = {"queue": Query(None, description="a queue key; all queues when omitted"),
          "since": Query(None, description="first day (ISO date, reporting time zone); default 30 days ago"),
          "until": Query(None, description="last day, included (ISO date); default today")}

    refusals: dict[int | str, dict[str, Any]] = {
        400: {"description": "a bad queue or date"}, 401: {"description": "not signed in"},
        403: {"description": "signed in, not a leader"}}

    def checked(request: Request, queue: str | None, since: str | None, until: str | None, now: datetime):
        """(period, queues) for a leader or the API token; else the 401/403/400 answer to send instead."""
        if (denied := refuse(request)) is not None:
            return denied
        try:
            return parse_query(services, queue, since, until, now)
        except BadQuery as e:
            return JSONResponse({"detail": str(e)}, status_code=400)

    @router.get("/sla/summary", response_model=Summary, responses=refusals)
    async def sla_summary(request: Request, queue: str | None = _q["queue"], since: str | None = _q["since"],
                          until: str | None = _q["until"]):
        """The SLA summary of the requests received in the period, per queue, type and SA."""
        now = datetime.now(UTC)
        if isinstance(answer := checked(request, queue, since, until, now), JSONResponse):
            return answer
        period, queues = answer
        data = await run_in_threadpool(sm.summary, services.engine, services.config, period, now=now, queues=queues)
        return JSONResponse(data)

    @router.get("/alignment", response_model=Alignment, responses=refusals)
    async def alignment(request: Request, queue: str | None = _q["queue"], since: str | None = _q["since"],
                        until: str | None = _q["until"]):
        """Which SAs work with which AEs: per pair, the AE's requests the SA holds and the SA's claims."""
        if isinstance(answer := checked(request, queue, since, until, datetime.now(UTC)), JSONResponse):
            return answer
        period, queues = answer
        pairs = await run_in_threadpool(sm.alignment, services.engine, period, queues)
        return JSONResponse({"since": period.since.isoformat(), "until": period.until.isoformat(), "pairs": pairs})

    @router.get("/requests.csv", response_class=StreamingResponse,
                responses={200: {"content": {"text/csv": {}}, "description": "one row per request"}, **refusals})
    async def requests_csv(request: Request, queue: str | None = _q["queue"], since: str | None = _q["since"],
                           until: str | None = _q["until"]):
        """Every request received in the period, one row each, with its SLA figures."""
        now = datetime.now(UTC)
        if isinstance(answer := checked(request, queue, since, until, now), JSONResponse):
            return answer
        period, queues = answer

        def body() -> Iterator[str]:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(sm.CSV_COLUMNS)
            for i, row in enumerate(sm.csv_rows(services.engine, services.config, period, now=now, queues=queues)):
                writer.writerow([neutralise(c) for c in row])
                if i % 500 == 499:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        name = f"requests-{period.since.isoformat()}-{period.until.isoformat()}.csv"
        # A sync iterator: Starlette runs each step in a thread, so the database reads stay off the loop.
        return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return router
