"""Who is asking: Sign in with Slack for the dashboard, and the Bearer token for reporting tools.

Sign in with Slack is OpenID Connect (https://api.slack.com/authentication/sign-in-with-slack): the
browser goes to Slack's authorize page with a random `state`, Slack sends it back to the callback with
a `code`, and the app exchanges the code (openid.connect.token) and asks who signed in
(openid.connect.userInfo). The Slack user id comes from Slack's answer, never from the browser.

The session is a cookie signed with TRIAGE_SESSION_SECRET (itsdangerous): HttpOnly, SameSite=Lax,
Secure when served over https. Signing out is a POST carrying a token derived from the session, so
another site can neither sign someone out nor read anything.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from triage.config import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "triage_session"
STATE_COOKIE = "triage_oauth_state"
SESSION_MAX_AGE = 12 * 3600  # a working day; then sign in again
STATE_MAX_AGE = 600  # the round trip through Slack's page
SCOPES = "openid profile"


@dataclass(frozen=True)
class Viewer:
    """Someone signed in to the dashboard."""

    user: str
    name: str
    team: str | None
    sid: str


class Auth:
    def __init__(self, settings: Settings):
        self.settings = settings
        secret = settings.session_secret.get_secret_value() if settings.session_secret else None
        self._sessions = URLSafeTimedSerializer(secret, salt="triage-session") if secret else None
        self._states = URLSafeTimedSerializer(secret, salt="triage-oauth-state") if secret else None

    @property
    def sign_in_configured(self) -> bool:
        return bool(self._sessions and self.settings.slack_client_id and self.settings.slack_client_secret)

    def missing(self) -> list[str]:
        return [name for name, value in (("TRIAGE_SESSION_SECRET", self._sessions),
                                          ("SLACK_CLIENT_ID", self.settings.slack_client_id),
                                          ("SLACK_CLIENT_SECRET", self.settings.slack_client_secret)) if not value]

    def is_leader(self, user: str) -> bool:
        return user in self.settings.config.slack.leaders

    # -- reading who is asking

    def viewer(self, request: Request) -> Viewer | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or self._sessions is None:
            return None
        try:
            data = self._sessions.loads(raw, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("user"), str):
            return None
        return Viewer(data["user"], str(data.get("name") or data["user"]), data.get("team"), str(data.get("sid")))

    def bearer_ok(self, request: Request) -> bool:
        token = self.settings.api_token.get_secret_value() if self.settings.api_token else None
        header = request.headers.get("authorization", "")
        if not token or not header.lower().startswith("bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())

    def csrf_token(self, viewer: Viewer) -> str:
        key = self.settings.session_secret.get_secret_value().encode()  # type: ignore[union-attr]
        return hmac.new(key, f"logout:{viewer.sid}".encode(), hashlib.sha256).hexdigest()

    # -- cookies

    def _cookie_kw(self, request: Request) -> dict[str, Any]:
        return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https", "path": "/"}

    def session_value(self, *, user: str, name: str, team: str | None) -> str:
        """The signed cookie value for someone Slack has just vouched for."""
        assert self._sessions is not None
        return self._sessions.dumps({"user": user, "name": name, "team": team, "sid": secrets.token_urlsafe(16)})

    def start_session(self, response: Response, request: Request, *, user: str, name: str, team: str | None):
        value = self.session_value(user=user, name=name, team=team)
        response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, **self._cookie_kw(request))

    def end_session(self, response: Response, request: Request) -> None:
        response.delete_cookie(SESSION_COOKIE, **self._cookie_kw(request))


def _redirect_uri(request: Request) -> str:
    return str(request.url_for("slack_callback"))


def auth_router(auth: Auth, settings: Settings, page) -> APIRouter:
    """`page(request, template, status, **context)` renders the dashboard's HTML pages."""
    router = APIRouter()

    @router.get("/auth/slack/login", include_in_schema=False)
    def slack_login(request: Request) -> Response:
        if not auth.sign_in_configured:
            return page(request, "message.html", 503, title="Sign-in is not set up",
                        message="Sign in with Slack is not configured: set " + " and ".join(auth.missing()) + ".")
        state = secrets.token_urlsafe(24)
        query = urlencode({"response_type": "code", "scope": SCOPES, "client_id": settings.slack_client_id,
                           "state": state, "redirect_uri": _redirect_uri(request)})
        response = RedirectResponse(f"{settings.slack_authorize_url}?{query}", status_code=303)
        response.set_cookie(STATE_COOKIE, auth._states.dumps(state), max_age=STATE_MAX_AGE,  # type: ignore[union-attr]
                            **auth._cookie_kw(request))
        return response

    @router.get("/auth/slack/callback", name="slack_callback", include_in_schema=False)
    def slack_callback(request: Request, code: str | None = None, state: str | None = None,
                       error: str | None = None) -> Response:
        # A plain def: FastAPI runs it in a thread, so the two Slack calls never block the event loop.
        if not auth.sign_in_configured:
            return page(request, "message.html", 503, title="Sign-in is not set up",
                        message="Sign in with Slack is not configured: set " + " and ".join(auth.missing()) + ".")
        expected = None
        raw = request.cookies.get(STATE_COOKIE)
        if raw:
            try:
                expected = auth._states.loads(raw, max_age=STATE_MAX_AGE)  # type: ignore[union-attr]
            except BadSignature:
                expected = None
        if not state or not isinstance(expected, str) or not hmac.compare_digest(state.encode(), expected.encode()):
            return page(request, "message.html", 400, title="Sign-in did not match",
                        message="This sign-in was not started here or took too long. Sign in again.")
        if error or not code:
            return page(request, "message.html", 400, title="Sign-in was cancelled",
                        message="Slack did not sign you in. You can try again.")
        client = WebClient(base_url=settings.slack_api_url, timeout=10)
        try:
            token = client.openid_connect_token(client_id=settings.slack_client_id,
                                                client_secret=settings.slack_client_secret.get_secret_value(),  # type: ignore[union-attr]
                                                code=code, redirect_uri=_redirect_uri(request))
            info = WebClient(token=token["access_token"], base_url=settings.slack_api_url,
                             timeout=10).openid_connect_userInfo()
        except SlackApiError as e:
            log.warning("Sign in with Slack failed: %s", e.response.get("error"))
            return page(request, "message.html", 400, title="Sign-in failed",
                        message="Slack did not accept this sign-in. Sign in again.")
        except SlackClientError as e:
            log.warning("Sign in with Slack: Slack unreachable (%s)", e.__class__.__name__)
            return page(request, "message.html", 502, title="Slack is unreachable",
                        message="Slack could not be reached to sign you in. Try again in a minute.")
        user = info.get("https://slack.com/user_id") or info.get("sub")
        if not isinstance(user, str):
            return page(request, "message.html", 400, title="Sign-in failed",
                        message="Slack did not say who signed in. Sign in again.")
        response = RedirectResponse("/dashboard", status_code=303)
        auth.start_session(response, request, user=user, name=str(info.get("name") or user),
                           team=info.get("https://slack.com/team_id"))
        response.delete_cookie(STATE_COOKIE, **auth._cookie_kw(request))
        log.info("dashboard sign-in: %s", user)
        return response

    @router.post("/auth/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        body = (await request.body())[:4096].decode("utf-8", "replace")
        csrf = (parse_qs(body).get("csrf") or [""])[0]
        viewer = auth.viewer(request)
        if viewer is not None and not hmac.compare_digest(csrf.encode(), auth.csrf_token(viewer).encode()):
            return page(request, "message.html", 403, title="Not signed out",
                        message="That sign-out did not come from this dashboard.")
        response = RedirectResponse("/dashboard", status_code=303)
        auth.end_session(response, request)
        return response

    return router
