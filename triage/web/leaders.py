"""The leaders' web routes in one place: sign-in, /dashboard and /api/*."""

from __future__ import annotations

from fastapi import FastAPI

from triage.config import Settings
from triage.services import Services
from triage.web.api import api_router
from triage.web.auth import Auth, auth_router
from triage.web.dashboard import Pages, dashboard_router


def include_leader_routes(app: FastAPI, settings: Settings, services: Services) -> None:
    auth, pages = Auth(settings), Pages()
    app.include_router(auth_router(auth, settings, pages))
    app.include_router(dashboard_router(services, auth, pages))
    app.include_router(api_router(services, auth))
