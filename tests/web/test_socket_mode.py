"""Socket Mode faults: a bad app token or an unreachable Slack never stops HTTP from being served; /healthz
says what is wrong; each failure is one log line; `triage serve` stops promptly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import WSMsgType, web
from fastapi.testclient import TestClient

from tests.conftest import BOT_TOKEN, SIGNING_SECRET, make_settings, shortcut_payload, wait_for
from tests.fakes.slack_api import FakeSlack
from triage.migrate import upgrade
from triage.slack.socket_mode import SocketMode
from triage.web import create_app


def _settings(sqlite_url: str, config_path: Path, api_url: str, app_token: str):
    return make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
                         SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url, SLACK_APP_TOKEN=app_token,
                         TRIAGE_EMBEDDED_WORKER=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_for(sqlite_url, config_path):
    def build(api_url: str, app_token: str):
        upgrade(sqlite_url)
        return create_app(_settings(sqlite_url, config_path, api_url, app_token), migrate=False, worker=False)

    return build


def _socket_failures(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "triage.slack.socket_mode" and "Socket Mode:" in r.getMessage()]


def test_bad_app_token_serves_http_and_health_says_why(app_for, fake_slack, caplog):
    caplog.set_level(logging.INFO)
    with TestClient(app_for(fake_slack.url, "xapp-1-wrong-Q7secretQ7")) as client:  # start-up returns at once
        wait_for(lambda: _socket_failures(caplog), what="a Socket Mode failure")
        r = client.get("/healthz")
        assert r.status_code == 200  # the database is fine: up, with what is wrong said
        body = r.json()
        assert body["status"] == "degraded"
        assert body["socket_mode"]["ok"] is False
        assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in body["socket_mode"]["detail"]
    failures = _socket_failures(caplog)
    assert all(r.exc_info is None for r in failures)  # one line each, no traceback
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" not in logged and "Q7secretQ7" not in logged


def test_bot_token_as_app_token_is_named(app_for, fake_slack, caplog):
    with TestClient(app_for(fake_slack.url, BOT_TOKEN)) as client:
        wait_for(lambda: not client.get("/healthz").json()["socket_mode"]["detail"].startswith("connecting"))
        assert "must start with xapp-" in client.get("/healthz").json()["socket_mode"]["detail"]


def test_unreachable_slack_serves_http(app_for, fake_slack, caplog):
    closed = f"http://127.0.0.1:{_free_port()}/api/"
    with TestClient(app_for(closed, fake_slack.app_token)) as client:
        wait_for(lambda: _socket_failures(caplog), what="a Socket Mode failure")
        detail = client.get("/healthz").json()["socket_mode"]["detail"]
        assert "cannot reach Slack" in detail and "retrying" in detail


def test_backoff_doubles_to_the_cap(fake_slack):
    """Each failed attempt waits twice as long as the one before, up to the cap (the waits are recorded,
    not waited)."""
    waits: list[float] = []

    async def scenario() -> None:
        stop = asyncio.Event()

        async def record(delay: float) -> None:
            waits.append(delay)
            if len(waits) == 8:
                stop.set()
                await asyncio.Event().wait()  # park here until close() cancels the task

        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url),
                        signing_secret=SIGNING_SECRET, request_verification_enabled=False)
        sm = SocketMode(bolt, "xapp-1-wrong", backoff_min=1, backoff_max=16, sleep=record)
        sm.start()
        await asyncio.wait_for(stop.wait(), 30)
        assert sm.failures == 8 and not sm.ok
        await sm.close()

    asyncio.run(scenario())
    assert waits == [1, 2, 4, 8, 16, 16, 16, 16]


class _SocketModeServer:
    """A websocket endpoint speaking Slack's Socket Mode envelope protocol: says hello on connect, sends
    the envelopes a test queues, and collects the acks (https://docs.slack.dev/apis/events-api/using-socket-mode)."""

    def __init__(self) -> None:
        self.acks: list[dict] = []
        self.connections = 0
        self.drop = 0  # close this many connections right after the hello, as Slack does when it moves us
        self._outgoing: asyncio.Queue | None = None
        self._loop = asyncio.new_event_loop()
        self.port = _free_port()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._outgoing = asyncio.Queue()
        app = web.Application()
        app.router.add_get("/link/", self._ws)
        runner = self._runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _ws(self, request):
        ws = web.WebSocketResponse()  # answers the client's pings itself
        await ws.prepare(request)
        self.connections += 1
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0TRIAGE01"}}))
        if self.drop > 0:
            self.drop -= 1
            await ws.close()
            return ws

        async def pump() -> None:
            while True:
                await ws.send_str(json.dumps(await self._outgoing.get()))

        task = asyncio.ensure_future(pump())
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.acks.append(json.loads(msg.data))
        task.cancel()
        return ws

    def send(self, envelope: dict) -> None:
        self._loop.call_soon_threadsafe(self._outgoing.put_nowait, envelope)

    def __enter__(self) -> _SocketModeServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    async def _shutdown(self) -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        await self._runner.cleanup()

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket=test"


def test_connects_and_answers_a_shortcut_over_the_socket(app_for, fake_slack, monkeypatch):
    with _SocketModeServer() as server:
        monkeypatch.setattr(fake_slack, "socket_mode_url", server.url)
        with TestClient(app_for(fake_slack.url, fake_slack.app_token)) as client:
            wait_for(lambda: client.get("/healthz").json()["socket_mode"]["ok"], what="Socket Mode connected")
            assert client.get("/healthz").json()["socket_mode"]["detail"] == "connected"
            payload = shortcut_payload(fake_slack)
            server.send({"envelope_id": "env-1", "type": "interactive", "accepts_response_payload": False,
                         "payload": payload})
            wait_for(lambda: any(a.get("envelope_id") == "env-1" for a in server.acks), what="the ack")
            wait_for(lambda: fake_slack.calls_to("views.open"), what="the modal")
            assert "triage_slack_ack_seconds_count{kind=\"shortcut\"}" in client.get("/metrics").text


def test_reconnects_when_slack_closes_the_connection(fake_slack, monkeypatch, caplog):
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    caplog.set_level(logging.INFO)
    with _SocketModeServer() as server:
        server.drop = 1
        monkeypatch.setattr(fake_slack, "socket_mode_url", server.url)

        async def scenario() -> None:
            bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.url),
                            signing_secret=SIGNING_SECRET, request_verification_enabled=False)
            sm = SocketMode(bolt, fake_slack.app_token, ping_interval=0.2)
            sm.start()
            while server.connections < 2 or not sm.ok:  # synchronisation on the server's count, not a timer
                await asyncio.sleep(0.01)
            assert sm.state() == {"ok": True, "detail": "connected"}
            await sm.close()

        asyncio.run(asyncio.wait_for(scenario(), 30))
    messages = [r.getMessage() for r in caplog.records if r.name == "triage.slack.socket_mode"]
    assert messages.count("connected to Slack in Socket Mode") == 2
    assert "Socket Mode: connection lost; reconnecting" in messages
    assert len(fake_slack.calls_to("apps.connections.open")) == 2  # a fresh URL for each connection


# ------------------------------------------------------------------ `triage serve` as a process


@pytest.fixture
def serve_env(tmp_path, config_path, fake_slack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITLAB_", "TRIAGE_", "DATABASE_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", TRIAGE_CONFIG=str(config_path),
               SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url,
               SLACK_APP_TOKEN="xapp-1-wrong-Q7secretQ7", TRIAGE_EMBEDDED_WORKER="false", LOG_FORMAT="json")
    return env


def _serve(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "triage.cli", "serve", "--port", str(port)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _health(port: int) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
    except httpx.HTTPError:
        return None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_binds_despite_a_bad_app_token_and_stops_on_signal(serve_env, tmp_path, sig):
    port = _free_port()
    proc = _serve(serve_env, port, tmp_path)
    try:
        health = wait_for(lambda: (h := _health(port)) and not h["socket_mode"]["ok"]
                          and "refused" in h["socket_mode"]["detail"] and h, timeout=60, what="serve up")
        assert health["database"]["ok"]
        proc.send_signal(sig)
        started = time.monotonic()
        proc.wait(timeout=15)  # stops promptly: before, it ignored signals while Socket Mode retried
        stopped_after = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode in (0, -sig), err  # uvicorn re-raises the signal once it has shut down cleanly
    assert "Application shutdown complete" in err
    assert "Traceback" not in err
    assert "Q7secretQ7" not in err + out
    lines = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{")]
    assert lines and len(lines) == len(err.strip().splitlines())  # every line is one JSON object
    assert any("Socket Mode: Slack refused SLACK_APP_TOKEN" in ln["message"] for ln in lines)
    assert any(ln["logger"].startswith("uvicorn") for ln in lines)  # uvicorn's lines in the same format
    assert stopped_after < 15


def test_fake_slack_hands_out_socket_urls_for_the_app_token_only(fake_slack):
    def post(method: str, token: str) -> dict:
        return httpx.post(fake_slack.url + method, headers={"Authorization": f"Bearer {token}"}).json()

    assert post("apps.connections.open", fake_slack.app_token) == {"ok": True, "url": fake_slack.socket_mode_url}
    assert post("apps.connections.open", BOT_TOKEN)["error"] == "not_allowed_token_type"
    assert post("apps.connections.open", "xapp-1-other")["error"] == "invalid_auth"
    assert post("auth.test", fake_slack.app_token)["error"] == "not_allowed_token_type"
    assert isinstance(fake_slack, FakeSlack)
