"""GET /dashboard: the leaders' SLA dashboard, server-rendered (Jinja2, autoescaped) with SVG charts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from triage.services import Services
from triage.services import summary as sm
from triage.web import charts
from triage.web.api import BadQuery, parse_query
from triage.web.auth import Auth

TREND_WEEKS = 8
_REASON_NAMES = {"capacity": "No SA had capacity", "no_context": "Request lacked context",
                 "late_triage": "Seen too late", "other": "Other"}
_TYPE_NAMES = {"opportunity": "Opportunity", "follow_up": "Follow-up", "security_assessment": "Security assessment",
               "event": "Event"}


def make_env() -> Environment:
    env = Environment(loader=PackageLoader("triage.web", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:.0f}%"
    env.filters["hours"] = lambda v: "–" if v is None else f"{v:.1f}h"
    env.filters["when"] = lambda v: v.astimezone(UTC).strftime("%a %d %b %H:%M UTC") if v else ""
    env.globals["type_name"] = lambda t: _TYPE_NAMES.get(t, t)
    return env


class Pages:
    def __init__(self) -> None:
        self.env = make_env()

    def __call__(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers={
            "Cache-Control": "no-store",
            # No scripts at all; styles and images only from here.
            "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


def _period(services: Services, query: dict[str, str], now: datetime) -> tuple[sm.Period, list[str] | None, str]:
    form = query.get("period") or ""
    if query.get("since") or query.get("until"):
        period, queues = parse_query(services, query.get("queue"), query.get("since"), query.get("until"), now)
        return period, queues, "custom"
    form = form if form in sm.PERIOD_FORMS else "30d"
    _, queues = parse_query(services, query.get("queue"), None, None, now)
    return sm.period_named(form, services.config, now), queues, form


def dashboard_data(services: Services, period: sm.Period, queues: list[str] | None, now: datetime) -> dict[str, Any]:
    """Everything the page shows, read through the summary module (blocking: run it in a thread)."""
    engine, config = services.engine, services.config
    data = sm.summary(engine, config, period, now=now, queues=queues)
    weeks = sm.weekly_attainment(engine, config, until=period.until, weeks=TREND_WEEKS, queues=queues)
    hist = sm.time_to_allocate_histogram(engine, config, period, queues)
    names = {q.key: q.name for q in config.queues}
    reasons = [(_REASON_NAMES.get(k, k), v) for k, v in data["breach_reasons"].items()]
    if data.get("breach_reasons_unrecorded"):
        reasons.append(("Not recorded yet", data["breach_reasons_unrecorded"]))
    return {
        "summary": data,
        "waiting": sm.waiting_requests(engine, config, now=now, queues=queues, limit=50),
        "requests": sm.requests_in_period(engine, config, period, now=now, queues=queues, limit=100),
        "alignment": sm.alignment(engine, period, queues)[:50],
        "weeks": weeks,
        "charts": {
            "distribution": charts.vbars("Time to allocate (SLA-clock hours), per queue", sm.histogram_labels(),
                                         [(names.get(k, k), v) for k, v in hist.items()]),
            "trend": charts.trend(f"Attainment, last {TREND_WEEKS} weeks (by week received)",
                                  [(date.fromisoformat(w["since"]).strftime("%d %b"), w["attainment"])
                                   for w in weeks]),
            "load": charts.hbars("Open claims per SA (load now)",
                                 [(s["slack_user"], s["open"]) for s in data["sas"][:12]], color=charts.COLORS[2]),
            "reasons": charts.hbars("Why SLAs were missed", reasons, color=charts.COLORS[3]),
        },
        "queue_names": names,
    }


def dashboard_router(services: Services, auth: Auth, pages: Pages) -> APIRouter:
    router = APIRouter()

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        viewer = auth.viewer(request)
        if viewer is None:
            return pages(request, "signin.html", 200, configured=auth.sign_in_configured, missing=auth.missing())
        if not auth.is_leader(viewer.user):
            return pages(request, "message.html", 403, title="Leaders only", viewer=viewer,
                         csrf=auth.csrf_token(viewer),
                         message="The SLA dashboard is for the SA leaders named in the app's config. "
                                 "Your own requests and claims are on the app's Home tab in Slack.")
        now = datetime.now(UTC)
        query = dict(request.query_params)
        try:
            period, queues, form = _period(services, query, now)
        except BadQuery as e:
            return pages(request, "message.html", 400, title="Check the filters", message=str(e), viewer=viewer,
                         csrf=auth.csrf_token(viewer), back=True)
        data = await run_in_threadpool(dashboard_data, services, period, queues, now)
        return pages(request, "dashboard.html", viewer=viewer, csrf=auth.csrf_token(viewer), period=period,
                     form=form, queue=(queues or [None])[0], queues=services.config.queues, now=now,
                     period_forms=sm.PERIOD_FORMS, **data)

    @router.get("/static/dashboard.css", include_in_schema=False)
    async def css() -> Response:
        text = resources.files("triage.web").joinpath("static/dashboard.css").read_text(encoding="utf-8")
        return Response(text, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    return router
