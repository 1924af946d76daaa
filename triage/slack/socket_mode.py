"""Socket Mode (SLACK_APP_TOKEN set): Slack sends the same payloads over a websocket, so no public URL is
needed. The connection is made in the background, so an unreachable Slack or a bad app token never holds
up start-up: HTTP is served, /healthz says what is wrong, and each failed attempt is one log line, retried
with backoff (1 s doubling to a minute) until it works or the process stops.

slack_sdk's own `SocketModeClient.connect()` retries forever, blocking whoever awaits it and logging a
traceback every ping interval; here `connect()` is one attempt and `SocketMode` is the only one that
retries. Slack's protocol: https://docs.slack.dev/apis/events-api/using-socket-mode
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from triage import metrics

log = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = 15.0  # seconds for apps.connections.open plus the websocket handshake
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
CLOSE_TIMEOUT = 3.0  # a Slack that doesn't answer our close frame must not hold up shutdown


class _OneAttemptClient(SocketModeClient):
    """The SDK's aiohttp client with `connect()` made a single attempt that raises when it fails."""

    async def connect(self) -> None:
        old, self.current_session = self.current_session, None
        if old is not None and not old.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), CLOSE_TIMEOUT)
        if self.aiohttp_client_session.closed:
            self.aiohttp_client_session = aiohttp.ClientSession()
        if self.wss_uri is None:
            # Not issue_new_wss_url(): it logs each failure itself, and SocketMode logs it once already.
            response = await self.web_client.apps_connections_open(app_token=self.app_token)
            self.wss_uri = response["url"]
        # A websocket URL serves one connection: the next attempt asks for a new one.
        url, self.wss_uri = self.wss_uri, None
        self.current_session = await self.aiohttp_client_session.ws_connect(
            url, autoping=False, heartbeat=self.ping_interval, proxy=self.proxy,
            ssl=self.web_client.ssl if self.web_client.ssl is not None else True)
        self.stale = False
        self.last_ping_pong_time = None
        await self.current_session.ping(f"sdk-ping-pong:{time.time()}".encode())
        for task in (self.current_session_monitor, self.message_receiver):
            if task is not None:
                task.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        self.message_receiver = asyncio.ensure_future(self.receive_messages())

    async def close(self) -> None:
        self.closed = True
        self.auto_reconnect_enabled = False
        for task in (self.message_processor, self.current_session_monitor, self.message_receiver):
            if task is not None:
                task.cancel()
        with contextlib.suppress(Exception):
            if self.current_session is not None:
                await asyncio.wait_for(self.current_session.close(), CLOSE_TIMEOUT)
        await self.aiohttp_client_session.close()


def describe(error: BaseException) -> str:
    """What went wrong, for one log line and /healthz, without the token or the websocket URL's ticket."""
    if isinstance(error, SlackApiError):
        data = error.response.data if error.response is not None else None
        code = data.get("error") if isinstance(data, dict) else None
        if code in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
            return (f"Slack refused SLACK_APP_TOKEN ({code}): generate an app-level token with the "
                    "connections:write scope (Basic Information -> App-Level Tokens)")
        if code == "not_allowed_token_type":
            return "SLACK_APP_TOKEN is not an app-level token: it must start with xapp-"
        status = getattr(error.response, "status_code", None)
        return f"apps.connections.open failed ({code or 'HTTP ' + str(status)})"
    if isinstance(error, aiohttp.WSServerHandshakeError):
        return f"Slack's websocket refused the connection (HTTP {error.status})"
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return f"no answer from Slack within {ATTEMPT_TIMEOUT:.0f}s"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot reach Slack at {error.host}:{error.port} ({error.__class__.__name__})"
    if isinstance(error, (aiohttp.ClientError, OSError)):
        return f"cannot reach Slack ({error.__class__.__name__})"
    return f"unexpected error ({error.__class__.__name__})"


class SocketMode:
    """Keeps one Socket Mode connection for a Bolt app, reconnecting with backoff; `state()` for /healthz."""

    def __init__(self, bolt: AsyncApp, app_token: str, *, ping_interval: float = 10.0,
                 backoff_min: float = BACKOFF_MIN, backoff_max: float = BACKOFF_MAX, sleep=asyncio.sleep) -> None:
        self.bolt = bolt
        self._token = app_token
        self.ping_interval = ping_interval
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._sleep = sleep  # tests pass one that records the backoff instead of waiting it out
        self.ok = False
        self.detail = "connecting"
        self.failures = 0
        self._client: _OneAttemptClient | None = None
        self._task: asyncio.Task | None = None
        self._closed = False

    def state(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}

    def start(self) -> None:
        """Begin connecting in the background; returns at once (call from the running event loop)."""
        self._client = _OneAttemptClient(app_token=self._token, logger=logging.getLogger("slack_sdk.socket_mode"),
                                         web_client=self.bolt.client, auto_reconnect_enabled=False,
                                         ping_interval=self.ping_interval)
        self._client.socket_mode_request_listeners.append(self._handle)
        self._task = asyncio.create_task(self._run(), name="triage-socket-mode")

    async def _run(self) -> None:
        delay = self.backoff_min
        client = self._client
        assert client is not None
        while not self._closed:
            try:
                await asyncio.wait_for(client.connect(), ATTEMPT_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is reported the same way: one line, retry
                self.failures += 1
                self.ok = False
                self.detail = f"{describe(e)}; retrying (attempt {self.failures})"
                log.warning("Socket Mode: %s; next attempt in %.0fs", describe(e), delay)
                await self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_min
            self.ok, self.failures = True, 0
            self.detail = "connected"
            log.info("connected to Slack in Socket Mode")
            while not self._closed and await client.is_connected():
                await asyncio.sleep(self.ping_interval / 2)
            if not self._closed:
                self.ok = False
                self.detail = "connection lost; reconnecting"
                log.warning("Socket Mode: connection lost; reconnecting")

    async def _handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        start = time.perf_counter()
        response = await run_async_bolt_app(self.bolt, req)
        await send_async_response(client, req, response, start)
        kind = metrics.slack_kind(req.payload)
        elapsed = time.perf_counter() - start
        metrics.SLACK_ACK_SECONDS.labels(kind=kind).observe(elapsed)
        log.info("socket %s %s %.1fms", req.type, kind, elapsed * 1000,
                 extra={"route": "socket_mode", "slack_kind": kind, "status": response.status,
                        "ms": round(elapsed * 1000, 1)})

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
