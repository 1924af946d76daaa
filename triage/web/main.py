"""create_app(): the ASGI app. Settings are built here, never at import time."""

import gc
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from triage import __version__, metrics, outbox
from triage.config import Settings
from triage.core.errors import DeliveryError
from triage.db import connection_history, make_engine, ping, session_scope
from triage.services import Services
from triage.web.access import AccessLog
from triage.web.gitlab_routes import gitlab_router
from triage.web.leaders import include_leader_routes
from triage.web.limits import BodyLimit
from triage.web.slack_routes import slack_router

log = logging.getLogger(__name__)


def _health(settings: Settings, services: Services) -> dict[str, Any]:
    try:
        ping(services.engine)
        database = {"ok": True, "detail": f"{services.engine.dialect.name} reachable"
                    + connection_history(services.engine)}
    except Exception as e:  # noqa: BLE001 - report, don't raise: this is the health check
        database = {"ok": False, "detail": f"unreachable: {e.__class__.__name__}"}
    if settings.slack_configured:
        slack = {"ok": True, "detail": "configured" + (" (Socket Mode)" if settings.slack_app_token else "")}
    else:
        missing = [n for n, v in (("SLACK_BOT_TOKEN", settings.slack_bot_token),
                                  ("SLACK_SIGNING_SECRET", settings.slack_signing_secret)) if not v]
        slack = {"ok": False, "detail": "not configured: set " + " and ".join(missing)}
    if settings.gitlab_configured:
        gitlab = {"ok": True, "detail": f"configured for {settings.gitlab_url}"}
    else:
        gitlab = {"ok": False, "detail": "not configured: set GITLAB_TOKEN (and GITLAB_URL if not gitlab.com)"}
    try:
        with session_scope(services.engine) as s:
            waiting, oldest_error = outbox.backlog(s)
        detail = f"{waiting} side effect(s) waiting" + (f"; last error: {oldest_error}" if oldest_error else "")
        backlog = {"ok": oldest_error is None, "detail": detail}
    except Exception as e:  # noqa: BLE001 - report, don't raise
        backlog = {"ok": False, "detail": f"unreadable: {e.__class__.__name__}"}
    # Salesforce is optional: unset is not a fault (opportunity ids are then checked by format only).
    salesforce = ({"ok": True, "detail": f"configured, logging in at {settings.salesforce_login_url}"}
                  if settings.salesforce_configured else
                  {"ok": True, "detail": "not configured (optional): set SALESFORCE_CLIENT_ID and "
                                        "SALESFORCE_CLIENT_SECRET"})
    queues = len(settings.config.queues)
    status = "ok" if database["ok"] and slack["ok"] and gitlab["ok"] and queues else (
        "degraded" if database["ok"] else "down")
    return {"status": status, "database": database, "slack": slack, "gitlab": gitlab,
            "salesforce": salesforce, "outbox": backlog,
            "queues": {"ok": queues > 0, "detail": f"{queues} configured" if queues else
                       "none configured: copy triage.example.toml to the TRIAGE_CONFIG path"}}


def _bot_identity(settings: Settings) -> Callable[[], int | None]:
    """The app's GitLab user id, learned with GET /user on first use and kept; None while GitLab can't
    be asked (asked again at most once a minute), so a Note Hook then counts no note as the app's own."""
    if not settings.gitlab_configured:
        return lambda: None
    from triage.gitlab_tracker import GitLabTracker

    tracker = GitLabTracker(settings.gitlab_url, settings.gitlab_token.get_secret_value(), timeout=5)
    known: dict[str, Any] = {"id": None, "tried": float("-inf")}
    lock = threading.Lock()

    def bot_user_id() -> int | None:
        with lock:
            if known["id"] is None and time.monotonic() - known["tried"] > 60:
                known["tried"] = time.monotonic()
                try:
                    known["id"] = tracker.bot_user_id()
                except DeliveryError as e:
                    log.warning("could not learn the app's GitLab user (GET /user): %s", e)
            return known["id"]

    return bot_user_id


def create_app(settings: Settings | None = None, *, migrate: bool = True, worker: Any = None,
               freeze_gc: bool = False) -> FastAPI:
    """Build the app. `migrate` brings the database to head at start-up; `worker` overrides the
    embedded worker (tests pass one with fake-backed clients, or False for none). `freeze_gc`: the
    process serves only this app (`triage serve`, `triage.web:app`), see the lifespan."""
    settings = settings or Settings()
    config = settings.config  # invalid config fails here, with one readable message naming the key
    engine = make_engine(settings.database_url)
    services = Services(settings, engine)
    from triage.worker import build_crm

    services.set_crm(build_crm(settings))  # None without SALESFORCE_* settings: ids are checked by format only

    bolt = None
    if settings.slack_configured:
        from triage.slack.app import build_bolt_app

        bolt = build_bolt_app(settings, services)
    else:
        log.warning("Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (see README)")
    if not settings.gitlab_configured:
        log.warning("GitLab is not configured: set GITLAB_TOKEN (and GITLAB_URL) (see README)")
    if not config.queues:
        log.warning("no queues configured: copy triage.example.toml to %s", settings.triage_config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if migrate:
            from triage.migrate import upgrade

            upgrade(settings.database_url)
        background = None
        if worker is not None and worker is not False:
            background = worker
        elif worker is None and settings.embedded_worker:
            from triage.worker import Worker

            background = Worker(services)
        if background is not None:
            services.set_wake(background.wake)
            background.start()
        app.state.worker = background
        http_session = None
        if bolt is not None:
            # One keep-alive HTTP session for every Web API call the listeners make (views.open above
            # all): without it each call opens a new connection, a new TLS handshake in production.
            import aiohttp

            http_session = aiohttp.ClientSession()
            bolt.client.session = http_session
        socket_mode = None
        if bolt is not None and settings.slack_app_token:
            from triage.slack.socket_mode import SocketMode

            # In the background: an unreachable Slack or a bad token must not stop HTTP from being served.
            socket_mode = SocketMode(bolt, settings.slack_app_token.get_secret_value())
            socket_mode.start()
        app.state.socket_mode = socket_mode
        if freeze_gc:
            # What start-up built (modules, models, schemas, the Bolt app) lives as long as the process:
            # moved out of the collector's generations (https://docs.python.org/3/library/gc.html#gc.freeze),
            # a full collection no longer walks it, which took ~70 ms each time (a pause for every request
            # in flight) and a share of each request's CPU.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if socket_mode is not None:
                await socket_mode.close()
            if http_session is not None:
                await http_session.close()
            if background is not None:
                background.stop()
            engine.dispose()

    app = FastAPI(title="triage", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None,
                  description="SA request intake. The JSON routes are documented here; /slack/events and "
                              "/gitlab/webhook take Slack's and GitLab's signed deliveries.")
    app.add_middleware(AccessLog)
    app.add_middleware(BodyLimit)  # every route: a body over its limit is a 413 before it is read whole
    app.state.settings = settings
    app.state.services = services
    app.include_router(slack_router(bolt, settings.slack_signing_secret.get_secret_value()
                                    if settings.slack_signing_secret else None))

    app.include_router(gitlab_router(services, settings.gitlab_webhook_secret.get_secret_value()
                                     if settings.gitlab_webhook_secret else None, _bot_identity(settings)))

    include_leader_routes(app, settings, services)

    @app.get("/healthz", summary="What works and what is not configured",
             responses={503: {"description": "The database is unreachable"}})
    async def healthz() -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        health = await run_in_threadpool(_health, settings, services)
        socket_mode = getattr(app.state, "socket_mode", None)
        if socket_mode is not None:
            health["socket_mode"] = socket_mode.state()
            if not socket_mode.ok and health["status"] == "ok":
                health["status"] = "degraded"
        # 503 only when the database is down (nothing can be stored): load balancers take the process out.
        # What is merely not configured is a 200 that says so.
        return JSONResponse(health, status_code=200 if health["database"]["ok"] else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus_metrics() -> Response:
        from starlette.concurrency import run_in_threadpool

        body, content_type = await run_in_threadpool(metrics.exposition, services.engine)
        return Response(body, media_type=content_type)

    return app


class _LazyApp:
    """`triage.web:app` for uvicorn and Procfiles, built on first use so that importing the module
    reads no settings (tests build their own with create_app)."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = create_app(freeze_gc=True)
        await self._app(scope, receive, send)


app = _LazyApp()
