"""A small fake of the Slack Web API served over real HTTP, for tests.

The real ``slack_sdk`` clients talk to it unchanged::

    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.url)
        client.chat_postMessage(channel="C1", text="hi")   # after fake.add_channel("C1")

What it imitates (https://docs.slack.dev/reference/methods; Block Kit limits as in
https://docs.slack.dev/reference/block-kit/blocks and https://docs.slack.dev/reference/views/modal-views):

* ``POST``/``GET`` ``/api/<method>``; arguments are read from the query string, a form body
  (``application/x-www-form-urlencoded``) and a JSON body (``application/json``) — the sync
  ``WebClient`` sends ``params=`` methods as a form body and ``json=`` methods as JSON, the
  ``AsyncWebClient`` sends ``GET`` methods as a query string.  ``null`` JSON values are dropped
  (the SDK sends unset keyword arguments as ``null``).
  ``view``/``blocks``/``attachments``/``metadata`` given as JSON strings (form bodies) are decoded.
* Auth: ``Authorization: Bearer <token>`` or a ``token`` query/form argument (Slack ignores ``token`` inside a
  JSON body).  Missing token -> ``not_authed``, wrong token -> ``invalid_auth``; both with HTTP 200.
* Errors are HTTP 200 ``{"ok": false, "error": ...}`` like Slack; only rate limiting (429 + ``Retry-After``)
  and outages (5xx) use other statuses.
* Unknown method -> ``unknown_method``; a path outside ``/api/`` -> HTTP 404.

Test-only knobs: :meth:`FakeSlack.fail`, :meth:`FakeSlack.set_down`, :meth:`FakeSlack.set_delay`.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Call", "FakeSlack"]

APP_ID = "A0TRIAGE01"
BOT_ID = "B0BOT0001"
TS_BASE_US = 1_700_000_000_000_000  # floor of the ts handed out (which follow the wall clock)
HISTORY_LIMIT_DEFAULT = 100
HISTORY_LIMIT_MAX = 999
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
VIEW_MAX_BYTES = 250_000
_JSON_ARGS = ("view", "blocks", "attachments", "metadata")

# Long names Slack shows as tz_label (standard, daylight); other zones fall back to the abbreviation.
_TZ_LABELS = {
    "America/New_York": ("Eastern Standard Time", "Eastern Daylight Time"),
    "America/Chicago": ("Central Standard Time", "Central Daylight Time"),
    "America/Denver": ("Mountain Standard Time", "Mountain Daylight Time"),
    "America/Phoenix": ("Mountain Standard Time", "Mountain Standard Time"),
    "America/Los_Angeles": ("Pacific Standard Time", "Pacific Daylight Time"),
    "Europe/London": ("Greenwich Mean Time", "British Summer Time"),
    "Europe/Berlin": ("Central European Time", "Central European Summer Time"),
    "Europe/Paris": ("Central European Time", "Central European Summer Time"),
    "Asia/Kolkata": ("India Standard Time", "India Standard Time"),
    "Asia/Tokyo": ("Japan Standard Time", "Japan Standard Time"),
    "Australia/Sydney": ("Australian Eastern Standard Time", "Australian Eastern Daylight Time"),
    "UTC": ("Universal Coordinated Time", "Universal Coordinated Time"),
}


@dataclass(frozen=True)
class Call:
    """One request the fake received. ``headers`` has lower-cased names; ``at`` is ``time.time()``."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _tz_info(tz: str) -> tuple[str, int]:
    """(tz_label, tz_offset seconds) for an IANA zone, as of now."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return tz, 0
    now = datetime.now(UTC).astimezone(zone)
    offset = int(now.utcoffset().total_seconds()) if now.utcoffset() is not None else 0
    labels = _TZ_LABELS.get(tz)
    if labels is None:
        return now.tzname() or tz, offset
    return (labels[1] if now.dst() else labels[0]), offset


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


# ----------------------------------------------------------------------------------------------------------
# Block Kit / view validation.  Messages follow Slack's "[ERROR] ... [json-pointer:/view/...]" format.
# ----------------------------------------------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def err(self, pointer: str, text: str) -> None:
        self.messages.append(f"[ERROR] {text} [json-pointer:{pointer}]")

    def max_len(self, pointer: str, value: Any, limit: int) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(pointer, f"must be less than {limit + 1} characters")

    def text_obj(
        self, pointer: str, obj: Any, limit: int, *, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.err(pointer, "must provide an object")
            return
        if not isinstance(obj, dict):
            self.err(pointer, "must provide an object")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.err(f"{pointer}/type", f"must be one of {', '.join(allowed)}")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.err(f"{pointer}/text", "must be more than 0 characters")
        else:
            self.max_len(f"{pointer}/text", text, limit)

    def option(self, pointer: str, opt: Any) -> None:
        if not isinstance(opt, dict):
            self.err(pointer, "must provide an object")
            return
        self.text_obj(f"{pointer}/text", opt.get("text"), 75)
        value = opt.get("value")
        if value is not None:
            self.max_len(f"{pointer}/value", value, 150)
        if opt.get("description") is not None:
            self.text_obj(f"{pointer}/description", opt.get("description"), 75)

    def options(self, pointer: str, options: Any, limit: int = 100) -> None:
        if not isinstance(options, list):
            self.err(pointer, "must provide an array")
            return
        if len(options) > limit:
            self.err(pointer, f"must provide no more than {limit} items")
        for i, opt in enumerate(options):
            self.option(f"{pointer}/{i}", opt)

    def element(self, pointer: str, el: Any) -> None:
        if not isinstance(el, dict):
            self.err(pointer, "must provide an object")
            return
        kind = el.get("type")
        if not isinstance(kind, str) or not kind:
            self.err(f"{pointer}/type", "must provide a string")
            return
        self.max_len(f"{pointer}/action_id", el.get("action_id"), 255)
        if el.get("placeholder") is not None:
            self.text_obj(f"{pointer}/placeholder", el.get("placeholder"), 150, plain_only=True)
        if kind == "button":
            self.text_obj(f"{pointer}/text", el.get("text"), 75, plain_only=True)
            self.max_len(f"{pointer}/value", el.get("value"), 2000)
            self.max_len(f"{pointer}/url", el.get("url"), 3000)
        if kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"):
            if "options" in el:
                limit = 5 if kind == "overflow" else (10 if kind in ("radio_buttons", "checkboxes") else 100)
                self.options(f"{pointer}/options", el["options"], limit)
            if "option_groups" in el:
                groups = el["option_groups"]
                if not isinstance(groups, list):
                    self.err(f"{pointer}/option_groups", "must provide an array")
                else:
                    if len(groups) > 100:
                        self.err(f"{pointer}/option_groups", "must provide no more than 100 items")
                    for i, grp in enumerate(groups):
                        gp = f"{pointer}/option_groups/{i}"
                        if not isinstance(grp, dict):
                            self.err(gp, "must provide an object")
                            continue
                        self.text_obj(f"{gp}/label", grp.get("label"), 75, plain_only=True)
                        self.options(f"{gp}/options", grp.get("options"), 100)
            selects = ("static_select", "multi_static_select")
            if kind in selects and "options" not in el and "option_groups" not in el:
                self.err(pointer, "must provide either options or option_groups")
        if isinstance(el.get("initial_option"), dict):
            self.option(f"{pointer}/initial_option", el["initial_option"])
        if isinstance(el.get("initial_options"), list):
            for i, opt in enumerate(el["initial_options"]):
                self.option(f"{pointer}/initial_options/{i}", opt)
        if kind == "plain_text_input":
            max_length = el.get("max_length")
            if max_length is not None and (not isinstance(max_length, int) or not 1 <= max_length <= 3000):
                self.err(f"{pointer}/max_length", "must be between 1 and 3000")
            min_length = el.get("min_length")
            if min_length is not None and (not isinstance(min_length, int) or not 0 <= min_length <= 3000):
                self.err(f"{pointer}/min_length", "must be between 0 and 3000")

    def blocks(self, pointer: str, blocks: Any, *, max_blocks: int, min_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.err(pointer, "must provide an array")
            return
        if len(blocks) < min_blocks:
            self.err(pointer, f"must provide at least {min_blocks} items")
        if len(blocks) > max_blocks:
            self.err(pointer, f"no more than {max_blocks} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            bp = f"{pointer}/{i}"
            if not isinstance(block, dict):
                self.err(bp, "must provide an object")
                continue
            kind = block.get("type")
            if not isinstance(kind, str) or not kind:
                self.err(f"{bp}/type", "must provide a string")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                if not isinstance(block_id, str) or not block_id:
                    self.err(f"{bp}/block_id", "must be more than 0 characters")
                else:
                    self.max_len(f"{bp}/block_id", block_id, 255)
                    if block_id in seen:
                        self.err(f"{bp}/block_id", "duplicate block_id")
                    seen.add(block_id)
            self.block(bp, kind, block)

    def block(self, bp: str, kind: str, block: dict[str, Any]) -> None:
        if kind == "input":
            self.text_obj(f"{bp}/label", block.get("label"), 2000, plain_only=True)
            if block.get("hint") is not None:
                self.text_obj(f"{bp}/hint", block.get("hint"), 2000, plain_only=True)
            if "element" not in block:
                self.err(f"{bp}/element", "must provide an object")
            else:
                self.element(f"{bp}/element", block["element"])
        elif kind == "section":
            if block.get("text") is None and not block.get("fields"):
                self.err(bp, "must provide either text or fields")
            if block.get("text") is not None:
                self.text_obj(f"{bp}/text", block.get("text"), 3000)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    self.err(f"{bp}/fields", "must provide no more than 10 items")
                else:
                    for j, fld in enumerate(fields):
                        self.text_obj(f"{bp}/fields/{j}", fld, 2000)
            if block.get("accessory") is not None:
                self.element(f"{bp}/accessory", block["accessory"])
        elif kind == "header":
            self.text_obj(f"{bp}/text", block.get("text"), 150, plain_only=True)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.err(f"{bp}/elements", "must provide at least 1 items")
            else:
                if len(elements) > 25:
                    self.err(f"{bp}/elements", "must provide no more than 25 items")
                for j, el in enumerate(elements):
                    self.element(f"{bp}/elements/{j}", el)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.err(f"{bp}/elements", "must provide at least 1 items")
            elif len(elements) > 10:
                self.err(f"{bp}/elements", "must provide no more than 10 items")
        elif kind == "markdown":
            self.max_len(f"{bp}/text", block.get("text"), 12000)

    def view(self, view: Any, *, allowed_types: tuple[str, ...]) -> None:
        if not isinstance(view, dict):
            self.err("/view", "must provide an object")
            return
        kind = view.get("type")
        if kind not in allowed_types:
            self.err("/view/type", f"must be one of {', '.join(allowed_types)}")
            return
        blocks = view.get("blocks")
        if kind == "modal":
            self.text_obj("/view/title", view.get("title"), 24, plain_only=True)
            self.blocks("/view/blocks", blocks, max_blocks=VIEW_BLOCKS_MAX, min_blocks=1)
            for key in ("submit", "close"):
                if view.get(key) is not None:
                    self.text_obj(f"/view/{key}", view.get(key), 24, plain_only=True)
            has_input = isinstance(blocks, list) and any(
                isinstance(b, dict) and b.get("type") == "input" for b in blocks
            )
            if has_input and view.get("submit") is None:
                self.err("/view/submit", "submit is required when an input block is within the blocks array")
        else:  # home
            self.blocks("/view/blocks", blocks, max_blocks=VIEW_BLOCKS_MAX, min_blocks=0)
            for key in ("submit", "close"):
                if view.get(key) is not None:
                    self.err(f"/view/{key}", "home view cannot have submit and close")
        self.max_len("/view/callback_id", view.get("callback_id"), 255)
        self.max_len("/view/private_metadata", view.get("private_metadata"), 3000)
        self.max_len("/view/external_id", view.get("external_id"), 255)


# ----------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ----------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under concurrent clients (1 s retransmit)
    fake: FakeSlack

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected in timeout tests; stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length > 0 else b"")

    def _serve(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.fake._dispatch(parts.path, parts.query, headers, body)
        except Exception as exc:  # a bug in the fake: make it visible to the test instead of hanging up
            reply = _Reply(500, {"ok": False, "error": f"fake_slack_crashed: {exc!r}"})
        data = json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout test)


# ----------------------------------------------------------------------------------------------------------
# The fake
# ----------------------------------------------------------------------------------------------------------


class FakeSlack:
    """In-process fake Slack Web API. See the module docstring for what it imitates."""

    def __init__(
        self, *, token: str = "xoxb-test", team_id: str = "T0001", bot_user_id: str = "U0BOT"
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = BOT_ID
        self.app_id = APP_ID
        self.url = ""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._init_state()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/api/"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in set_delay
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ----------------------------------------------------------------------------------------

    def _init_state(self) -> None:
        self._calls: list[Call] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._dms: dict[str, str] = {}  # user id (or sorted "U1,U2") -> D/G channel id
        self._messages: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._home_views: dict[str, str] = {}  # user id -> view id
        self._ephemerals: list[dict[str, Any]] = []
        self._used_triggers: set[str] = set()
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._hook: Callable[[str], None] | None = None
        self._down = False
        self._ts_us = TS_BASE_US
        self._ids = itertools.count(1)
        self.add_user(self.bot_user_id, name="triage", real_name="Triage", is_bot=True)

    def reset(self) -> None:
        """Forget everything: calls, seeded users/channels/groups, messages, views, failures, delays."""
        with self._lock:
            self._init_state()

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        tz: str = "America/New_York",
        is_bot: bool = False,
        deleted: bool = False,
        display_name: str | None = None,
        title: str = "",
    ) -> dict[str, Any]:
        """Seed a user; returns the ``users.info`` ``user`` object that will be served."""
        name = name or f"user_{user_id.lower()}"
        real_name = real_name if real_name is not None else name.replace("_", " ").replace(".", " ").title()
        first, _, last = real_name.partition(" ")
        tz_label, tz_offset = _tz_info(tz)
        profile: dict[str, Any] = {
            "title": title,
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name if display_name is not None else name,
            "display_name_normalized": display_name if display_name is not None else name,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": "g0000000000a",
            "first_name": first,
            "last_name": last,
            "image_24": "https://example.slack.com/avatar_24.png",
            "image_48": "https://example.slack.com/avatar_48.png",
            "image_72": "https://example.slack.com/avatar_72.png",
            "image_192": "https://example.slack.com/avatar_192.png",
            "team": self.team_id,
        }
        if email is not None:
            profile["email"] = email
        if is_bot:
            profile.update({"bot_id": self.bot_id, "api_app_id": self.app_id, "always_active": True})
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "is_email_confirmed": email is not None,
            "who_can_share_contact_card": "EVERYONE",
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_usergroup(self, usergroup_id: str, members: list[str]) -> None:
        with self._lock:
            self._usergroups[usergroup_id] = list(members)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_member: bool = True,
        is_private: bool | None = None,
        is_archived: bool = False,
    ) -> None:
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name or channel_id.lower(),
                "is_channel": not channel_id.startswith(("D", "G")),
                "is_group": False,
                "is_im": channel_id.startswith("D"),
                "is_mpim": False,
                "is_private": channel_id.startswith("G") if is_private is None else is_private,
                "is_archived": is_archived,
                "is_general": False,
                "is_member": is_member,
                "created": 1_600_000_000,
                "creator": self.bot_user_id,
                "context_team_id": self.team_id,
            }

    # -- failure injection ----------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``'*'`` = any method) fail.

        * ``status=429`` -> HTTP 429, ``Retry-After: <retry_after or 1>``,
          ``{"ok": false, "error": "ratelimited"}``
        * ``status>=500`` -> that status, ``{"ok": false, "error": error or "internal_error"}``
        * ``status=200`` -> HTTP 200 ``{"ok": false, "error": error}`` (``error`` required)

        A failed call has no effect on state.  Queues are FIFO; a method's own queue is used before ``'*'``.
        """
        if status == 200 and not error:
            raise ValueError("fail(status=200) needs error=")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            for _ in range(times):
                queue.append(_Failure(status, error, retry_after))

    def set_down(self, down: bool) -> None:
        """While down, every request answers HTTP 503 ``{"ok": false, "error": "service_unavailable"}``."""
        with self._lock:
            self._down = down

    def set_delay(self, method: str, seconds: float) -> None:
        """Answer ``method`` (``'*'`` = any) only after ``seconds``; ``0`` removes the delay.

        The call takes effect *before* the delay, like a slow Slack whose answer the client never sees.
        """
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def on_call(self, hook: Callable[[str], None] | None) -> None:
        """Run ``hook(method)`` for every call, before it takes effect (``None`` removes it): a test's
        way to act at the moment Slack is called, e.g. to move a frozen clock on as if the call were slow."""
        with self._lock:
            self._hook = hook

    # -- read helpers ---------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every chat.postMessage message, in order, with its current content (after chat.update)."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def messages_in(
        self, channel: str, *, thread_ts: str | None = None, top_level_only: bool = False
    ) -> list[dict[str, Any]]:
        """Messages in ``channel`` (a user id means the app's DM with that user).

        ``thread_ts``: only replies in that thread (not the parent).  ``top_level_only``: leave out thread
        replies, except those posted with ``reply_broadcast``.
        """
        with self._lock:
            cid = self._resolve_channel(channel) or channel
            out = []
            for msg in self._messages:
                if msg["channel"] != cid:
                    continue
                is_reply = msg.get("thread_ts") is not None and msg["thread_ts"] != msg["ts"]
                if thread_ts is not None and not (is_reply and msg["thread_ts"] == thread_ts):
                    continue
                if top_level_only and is_reply and not msg.get("reply_broadcast"):
                    continue
                out.append(copy.deepcopy(msg))
            return out

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            msg = self._find_message(self._resolve_channel(channel) or channel, ts)
            return copy.deepcopy(msg) if msg is not None else None

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._views)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            vid = self._home_views.get(user_id)
            return copy.deepcopy(self._views[vid]) if vid else None

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._ephemerals)

    def dm_channel(self, user_id: str) -> str:
        """The stable ``D...`` id conversations.open returns for ``user_id``."""
        with self._lock:
            return self._dm_for(user_id)

    def new_trigger_id(self) -> str:
        """A fresh, unused trigger_id in Slack's format."""
        n = next(self._ids)
        return f"{1_700_000_000 + n}.{n:011d}.{n:032x}"

    # -- internals ------------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        # Like Slack, a ts is the posting time (so conversations.history's oldest/latest mean something),
        # made strictly increasing so two messages in the same microsecond still get distinct ids.
        self._ts_us = max(self._ts_us + 100, int(time.time() * 1_000_000))
        return f"{self._ts_us // 1_000_000}.{self._ts_us % 1_000_000:06d}"

    def _dm_for(self, key: str) -> str:
        cid = self._dms.get(key)
        if cid is None:
            prefix = "G" if "," in key else "D"
            cid = f"{prefix}0{len(self._dms) + 1:08d}"
            self._dms[key] = cid
        return cid

    def _resolve_channel(self, channel: str) -> str | None:
        """Channel id messages go to, or None if Slack would answer channel_not_found."""
        if channel in self._channels or channel in self._dms.values():
            return channel
        if channel.startswith(("U", "W")) and channel in self._users:
            return self._dm_for(channel)
        return None

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self._messages:
            if msg["channel"] == channel and msg["ts"] == ts:
                return msg
        return None

    def _dispatch(self, path: str, query: str, headers: dict[str, str], body: bytes) -> _Reply:
        if not path.startswith("/api/"):
            return _Reply(404, {"ok": False, "error": "not_found"})
        method = path[len("/api/") :].strip("/")
        args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        form_token = args.get("token")
        bad_json = False
        ctype = headers.get("content-type", "").lower()
        if body:
            if "json" in ctype:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed, bad_json = None, True
                if isinstance(parsed, dict):
                    args.update({k: v for k, v in parsed.items() if v is not None})
                elif not bad_json:
                    bad_json = True
            elif "x-www-form-urlencoded" in ctype:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                form_token = form.get("token", form_token)
                args.update(form)
        bad_json_arg = None
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str) and args[key]:
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    bad_json_arg = key
        args.pop("token", None)
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else form_token

        hook = self._hook
        if hook is not None:
            hook(method)
        with self._lock:
            self._calls.append(Call(method, copy.deepcopy(args), dict(headers), time.time()))
            delay = self._delays.get(method, self._delays.get("*", 0.0))
            reply = self._answer(method, args, token, bad_json, bad_json_arg)
            reply.headers.setdefault("X-Slack-Req-Id", f"{len(self._calls):032x}")
        if delay > 0:
            self._stopping.wait(delay)
        return reply

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None, bad_json: bool, bad_json_arg: str | None
    ) -> _Reply:
        if self._down:
            return _Reply(503, {"ok": False, "error": "service_unavailable"})
        failure = None
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                failure = queue.popleft()
                break
        if failure is not None:
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            if failure.status == 429:
                extra.setdefault("Retry-After", "1")
                return _Reply(429, {"ok": False, "error": "ratelimited"}, extra)
            error = failure.error or ("internal_error" if failure.status >= 500 else "fatal_error")
            return _Reply(failure.status, {"ok": False, "error": error}, extra)
        handler = _METHODS.get(method)
        if handler is None:
            return _Reply(200, {"ok": False, "error": "unknown_method"})
        if bad_json:
            return _Reply(200, {"ok": False, "error": "invalid_json"})
        if not token:
            return _Reply(200, {"ok": False, "error": "not_authed"})
        if method in _APP_TOKEN_METHODS or token == getattr(self, "app_token", None):
            return _check_app_token(self, method, token)  # Socket Mode: see the end of this file
        if token != self.token:
            return _Reply(200, {"ok": False, "error": "invalid_auth"})
        if bad_json_arg is not None:
            error = "invalid_blocks_format" if bad_json_arg == "blocks" else "invalid_arguments"
            return _Reply(200, {"ok": False, "error": error})
        try:
            result = handler(self, args)
        except _ApiError as exc:
            return _Reply(200, {"ok": False, "error": exc.error, **exc.extra})
        return _Reply(200, {"ok": True, **result})

    # -- methods --------------------------------------------------------------------------------------

    @staticmethod
    def _require(args: dict[str, Any], *names: str, error: str = "invalid_arguments") -> None:
        for name in names:
            if args.get(name) in (None, ""):
                raise _ApiError(
                    error, response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
                )

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://example.slack.com/",
            "team": "Example Workspace",
            "user": self._users[self.bot_user_id]["name"] if self.bot_user_id in self._users else "triage",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _check_view(self, view: Any, allowed_types: tuple[str, ...]) -> None:
        if isinstance(view, dict) and len(json.dumps(view)) > VIEW_MAX_BYTES:
            raise _ApiError("view_too_large")
        checker = _Checker()
        checker.view(view, allowed_types=allowed_types)
        if checker.messages:
            raise _ApiError("invalid_arguments", response_metadata={"messages": checker.messages})

    def _new_hash(self) -> str:
        return f"{1_700_000_000 + next(self._ids)}.{next(self._ids):08x}"

    def _make_view(self, view: dict[str, Any], *, vid: str | None = None, **extra: Any) -> dict[str, Any]:
        vid = vid or f"V0{next(self._ids):08d}"
        out = {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_hash(),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": vid,
            "previous_view_id": None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        out.update(extra)
        return out

    def _use_trigger(self, args: dict[str, Any]) -> None:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            raise _ApiError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]}
            )
        if trigger in self._used_triggers:
            raise _ApiError("expired_trigger_id")
        self._used_triggers.add(trigger)

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            self._require(args, "trigger_id")
        self._require(args, "view")
        self._check_view(args["view"], ("modal",))
        self._use_trigger(args)
        view = self._make_view(args["view"])
        self._views[view["id"]] = view
        return {"view": copy.deepcopy(view)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._views_open(args)

    def _find_view(self, args: dict[str, Any]) -> dict[str, Any]:
        vid, ext = args.get("view_id"), args.get("external_id")
        if not vid and not ext:
            self._require(args, "view_id")
        for view in self._views.values():
            if (vid and view["id"] == vid) or (not vid and ext and view.get("external_id") == ext):
                return view
        raise _ApiError("not_found")

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "view")
        current = self._find_view(args)
        self._check_view(args["view"], (current["type"],))
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        new_view = dict(args["view"])
        new_view.setdefault("external_id", current.get("external_id", ""))
        view = self._make_view(
            new_view,
            vid=current["id"],
            root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
        )
        self._views[view["id"]] = view
        return {"view": copy.deepcopy(view)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "user_id", "view")
        self._check_view(args["view"], ("home",))
        user_id = args["user_id"]
        vid = self._home_views.get(user_id)
        if vid is not None and args.get("hash") and args["hash"] != self._views[vid]["hash"]:
            raise _ApiError("hash_conflict")
        view = self._make_view(args["view"], vid=vid)
        self._views[view["id"]] = view
        self._home_views[user_id] = view["id"]
        return {"view": copy.deepcopy(view)}

    def _check_message_content(self, args: dict[str, Any], *, require: bool = True) -> None:
        blocks = args.get("blocks")
        if require and not args.get("text") and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        if blocks is None or blocks == []:
            return
        checker = _Checker()
        checker.blocks("/blocks", blocks, max_blocks=MESSAGE_BLOCKS_MAX, min_blocks=0)
        if checker.messages:
            raise _ApiError(
                "invalid_blocks", errors=checker.messages, response_metadata={"messages": checker.messages}
            )

    def _postable_channel(self, args: dict[str, Any]) -> str:
        self._require(args, "channel", error="channel_not_found")
        cid = self._resolve_channel(str(args["channel"]))
        if cid is None:
            raise _ApiError("channel_not_found")
        info = self._channels.get(cid)
        if info is not None:
            if info["is_archived"]:
                raise _ApiError("is_archived")
            if not info["is_member"]:
                raise _ApiError("not_in_channel")
        return cid

    def _message_object(self, msg: dict[str, Any]) -> dict[str, Any]:
        out = {
            "type": "message",
            "subtype": "bot_message",
            "text": msg["text"],
            "ts": msg["ts"],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "blocks": copy.deepcopy(msg["blocks"]),
        }
        if msg.get("thread_ts"):
            out["thread_ts"] = msg["thread_ts"]
        if msg.get("edited"):
            out["edited"] = dict(msg["edited"])
        if msg.get("metadata"):
            out["metadata"] = copy.deepcopy(msg["metadata"])
        return out

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._postable_channel(args)
        self._check_message_content(args)
        ts = self._next_ts()
        thread_ts = args.get("thread_ts") or None
        msg: dict[str, Any] = {
            "channel": cid,
            "ts": ts,
            "thread_ts": str(thread_ts) if thread_ts else None,
            "text": args.get("text", ""),
            "blocks": copy.deepcopy(args.get("blocks") or []),
            "attachments": copy.deepcopy(args.get("attachments") or []),
            "metadata": copy.deepcopy(args.get("metadata")),
            "reply_broadcast": _truthy(args.get("reply_broadcast", False)),
            "unfurl_links": _truthy(args["unfurl_links"]) if "unfurl_links" in args else None,
            "unfurl_media": _truthy(args["unfurl_media"]) if "unfurl_media" in args else None,
            "user": self.bot_user_id,
            "edited": None,
            "reply_count": 0,
        }
        if msg["thread_ts"]:
            parent = self._find_message(cid, msg["thread_ts"])
            if parent is not None:
                parent["reply_count"] += 1
                parent["latest_reply"] = ts
        self._messages.append(msg)
        return {"channel": cid, "ts": ts, "message": self._message_object(msg)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "channel", error="channel_not_found")
        self._require(args, "ts", error="message_not_found")
        cid = self._resolve_channel(str(args["channel"]))
        if cid is None:
            raise _ApiError("channel_not_found")
        msg = self._find_message(cid, str(args["ts"]))
        if msg is None:
            raise _ApiError("message_not_found")
        self._check_message_content(args, require=False)
        if "text" in args:
            msg["text"] = args["text"]
        if "blocks" in args:
            msg["blocks"] = copy.deepcopy(args["blocks"] or [])
        if "attachments" in args:
            msg["attachments"] = copy.deepcopy(args["attachments"] or [])
        if "metadata" in args:
            msg["metadata"] = copy.deepcopy(args["metadata"])
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": cid, "ts": msg["ts"], "text": msg["text"], "message": self._message_object(msg)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "user", error="user_not_found")
        cid = self._postable_channel(args)
        if args["user"] not in self._users:
            raise _ApiError("user_not_found")
        self._check_message_content(args)
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": cid,
                "user": args["user"],
                "message_ts": ts,
                "thread_ts": args.get("thread_ts"),
                "text": args.get("text", ""),
                "blocks": copy.deepcopy(args.get("blocks") or []),
            }
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "channel", error="channel_not_found")
        self._require(args, "message_ts", error="message_not_found")
        cid = self._resolve_channel(str(args["channel"]))
        if cid is None:
            raise _ApiError("channel_not_found")
        msg = self._find_message(cid, str(args["message_ts"]))
        if msg is None:
            raise _ApiError("message_not_found")
        link = f"https://example.slack.com/archives/{cid}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={cid}"
        return {"channel": cid, "permalink": link}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            cid = self._resolve_channel(str(args["channel"]))
            if cid is None:
                raise _ApiError("channel_not_found")
            return {"no_op": True, "already_open": True, "channel": {"id": cid}}
        users = args.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        if not users:
            raise _ApiError("users_list_not_supplied")
        ids = sorted({u.strip() for u in str(users).split(",") if u.strip()})
        for uid in ids:
            if uid not in self._users:
                raise _ApiError("user_not_found")
        if len(ids) > 8:
            raise _ApiError("too_many_users")
        key = ",".join(ids)
        already = key in self._dms
        cid = self._dm_for(key)
        channel: dict[str, Any] = {"id": cid}
        if _truthy(args.get("return_im", False)):
            channel.update(self._channel_info(cid))
        return {"no_op": already, "already_open": already, "channel": channel}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages (and broadcast replies) of a channel, newest first.

        ``oldest``/``latest`` bound the ts (exclusive unless ``inclusive``), ``limit`` (default 100,
        max 999) and ``cursor`` paginate; ``metadata`` is only included with ``include_all_metadata``.
        """
        self._require(args, "channel", error="channel_not_found")
        cid = self._resolve_channel(str(args["channel"]))
        if cid is None:
            raise _ApiError("channel_not_found")
        info = self._channels.get(cid)
        if info is not None and not info["is_member"]:
            # A bot outside a public channel is told so; a private one it isn't in doesn't exist for it.
            raise _ApiError("channel_not_found" if info["is_private"] else "not_in_channel")
        try:
            oldest = float(args.get("oldest") or 0)
            latest = float(args["latest"]) if args.get("latest") else None
            limit = int(args.get("limit") or HISTORY_LIMIT_DEFAULT)
            offset = int(args.get("cursor") or 0)
        except (TypeError, ValueError):
            raise _ApiError("invalid_arguments") from None
        limit = max(1, min(limit, HISTORY_LIMIT_MAX))
        inclusive = _truthy(args.get("inclusive", False))
        with_metadata = _truthy(args.get("include_all_metadata", False))

        def in_range(ts: float) -> bool:
            after = ts >= oldest if inclusive else ts > oldest
            before = latest is None or (ts <= latest if inclusive else ts < latest)
            return after and before

        picked = []
        for msg in self._messages:
            if msg["channel"] != cid:
                continue
            is_reply = msg.get("thread_ts") is not None and msg["thread_ts"] != msg["ts"]
            if is_reply and not msg.get("reply_broadcast"):
                continue
            if in_range(float(msg["ts"])):
                picked.append(msg)
        picked.sort(key=lambda m: float(m["ts"]), reverse=True)
        page = picked[offset : offset + limit]
        out = []
        for msg in page:
            obj = self._message_object(msg)
            if not with_metadata:
                obj.pop("metadata", None)
            if msg.get("reply_count"):
                obj["reply_count"] = msg["reply_count"]
                obj["thread_ts"] = msg["ts"]
            out.append(obj)
        more = offset + limit < len(picked)
        return {
            "messages": out,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }

    def _channel_info(self, cid: str) -> dict[str, Any]:
        if cid in self._channels:
            return copy.deepcopy(self._channels[cid])
        key = next(k for k, v in self._dms.items() if v == cid)
        info: dict[str, Any] = {
            "id": cid,
            "created": 1_600_000_000,
            "is_im": cid.startswith("D"),
            "is_mpim": cid.startswith("G"),
            "is_channel": False,
            "is_group": False,
            "is_private": True,
            "is_archived": False,
            "is_member": True,
            "context_team_id": self.team_id,
        }
        if info["is_im"]:
            info["user"] = key
        else:
            info["name"] = "mpdm-" + "--".join(self._users[u]["name"] for u in key.split(",")) + "-1"
        return info

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "channel", error="channel_not_found")
        cid = self._resolve_channel(str(args["channel"]))
        if cid is None:
            raise _ApiError("channel_not_found")
        return {"channel": self._channel_info(cid)}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "user", error="user_not_found")
        user = self._users.get(str(args["user"]))
        if user is None:
            raise _ApiError("user_not_found")
        user = copy.deepcopy(user)
        if _truthy(args.get("include_locale", False)):
            user["locale"] = "en-US"
        return {"user": user}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "email", error="users_not_found")
        wanted = str(args["email"]).strip().lower()
        for user in self._users.values():
            email = user["profile"].get("email")
            if email and email.lower() == wanted:
                return {"user": copy.deepcopy(user)}
        raise _ApiError("users_not_found")

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "usergroup")
        members = self._usergroups.get(str(args["usergroup"]))
        if members is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(members)}


_METHODS = {
    "auth.test": FakeSlack._auth_test,
    "views.open": FakeSlack._views_open,
    "views.push": FakeSlack._views_push,
    "views.update": FakeSlack._views_update,
    "views.publish": FakeSlack._views_publish,
    "chat.postMessage": FakeSlack._chat_post_message,
    "chat.update": FakeSlack._chat_update,
    "chat.postEphemeral": FakeSlack._chat_post_ephemeral,
    "chat.getPermalink": FakeSlack._chat_get_permalink,
    "conversations.open": FakeSlack._conversations_open,
    "conversations.info": FakeSlack._conversations_info,
    "conversations.history": FakeSlack._conversations_history,
    "users.info": FakeSlack._users_info,
    "users.lookupByEmail": FakeSlack._users_lookup_by_email,
    "usergroups.users.list": FakeSlack._usergroups_users_list,
}


# ----------------------------------------------------------------------------------------------------------
# Rate limits (off unless a test calls ``enforce_rate_limits``)
# ----------------------------------------------------------------------------------------------------------
# Slack's Web API tiers (https://docs.slack.dev/apis/web-api/rate-limits, and each method's page): Tier 2 is
# 20+ calls a minute, Tier 3 50+, Tier 4 100+, per method, per app and workspace, with bursts allowed.
# chat.postMessage has its own rule: "1 message per second to a specific channel", bursts allowed, and
# "several hundred messages per minute" across the workspace. Above a limit Slack answers HTTP 429
# {"ok": false, "error": "ratelimited"} with Retry-After in seconds. Modelled here as token buckets:
# a bucket holds `burst` calls and refills at the tier's rate; an empty bucket answers 429 with the
# seconds until the next token (rounded up, at least 1) and the call has no effect.

SLACK_TIERS_PER_MINUTE: dict[str, float] = {  # methods whose tier the method pages state; others unlimited
    "views.open": 100, "views.update": 100, "views.push": 100, "views.publish": 100,  # Tier 4
    "chat.postEphemeral": 100, "users.info": 100,  # Tier 4
    "chat.update": 50, "conversations.open": 50, "conversations.history": 50, "users.lookupByEmail": 50,  # Tier 3
}


@dataclass
class SlackLimitEvent:
    """One call the rate limiter saw: which bucket, when, and whether it was refused (429)."""

    method: str
    bucket: str
    at: float
    limited: bool
    retry_after: int = 0


def _ceil_seconds(wait: float) -> int:
    """Retry-After is whole seconds: rounded up, at least 1."""
    whole = int(wait)
    return max(1, whole + (wait > whole))


class _Bucket:
    def __init__(self, per_second: float, burst: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.at = per_second, burst, burst, now

    def take(self, now: float) -> float:
        """0 when a call may go now (and takes a token), else the seconds until the next token."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SlackRateLimits:
    """Token buckets per method (per channel for chat.postMessage, plus a workspace-wide bucket).

    ``time_scale`` > 1 compresses time for short tests (every rate multiplied, every Retry-After divided,
    so the shape of the run is the same, only faster); the default suite's tests say when they use it.
    """

    def __init__(self, *, tiers: dict[str, float] | None = None, post_per_channel_per_second: float = 1.0,
                 post_channel_burst: float = 3, post_workspace_per_minute: float = 300,
                 burst_seconds: float = 10.0, time_scale: float = 1.0) -> None:
        self.tiers = dict(SLACK_TIERS_PER_MINUTE if tiers is None else tiers)
        self.post_rate, self.post_burst = post_per_channel_per_second, post_channel_burst
        self.workspace_per_minute, self.burst_seconds = post_workspace_per_minute, burst_seconds
        self.time_scale = time_scale
        self.events: list[SlackLimitEvent] = []
        self._buckets: dict[str, _Bucket] = {}

    def bucket_spec(self, bucket: str) -> tuple[float, float]:
        """(calls per second, burst) of a bucket, before time_scale."""
        if bucket.startswith("chat.postMessage:"):
            return self.post_rate, self.post_burst
        per_minute = self.workspace_per_minute if bucket == "chat.postMessage" else self.tiers[bucket]
        return per_minute / 60.0, max(1.0, per_minute / 60.0 * self.burst_seconds)

    def _bucket(self, key: str, now: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            rate, burst = self.bucket_spec(key)
            b = self._buckets[key] = _Bucket(rate * self.time_scale, burst, now)
        return b

    def check(self, method: str, channel: str | None) -> tuple[str, int] | None:
        """None when the call may go ahead, else (bucket, Retry-After seconds)."""
        now = time.monotonic()
        keys = [f"chat.postMessage:{channel}", "chat.postMessage"] if method == "chat.postMessage" else (
            [method] if method in self.tiers else [])
        waits = [(k, self._bucket(k, now).take(now)) for k in keys]
        refused = [(k, w) for k, w in waits if w > 0]
        if not refused:
            for k in keys:
                self.events.append(SlackLimitEvent(method, k, now, False))
            return None
        for k, w in waits:  # a refused call uses no quota: give back what the other buckets took
            if w == 0:
                self._buckets[k].tokens += 1
        key, wait = max(refused, key=lambda kw: kw[1])
        retry_after = _ceil_seconds(wait)
        self.events.append(SlackLimitEvent(method, key, now, True, retry_after))
        return key, retry_after


def _enforce_rate_limits(self: FakeSlack, limits: SlackRateLimits | None = None, **kw: Any) -> SlackRateLimits:
    """Start refusing calls over Slack's documented rates (see SlackRateLimits); ``None`` limits turns
    them off again via ``stop_rate_limits``. Returns the limiter, whose ``events`` a test can read."""
    with self._lock:
        self._rate_limits = limits or SlackRateLimits(**kw)
        return self._rate_limits


def _stop_rate_limits(self: FakeSlack) -> None:
    with self._lock:
        self._rate_limits = None


_answer_unlimited = FakeSlack._answer


def _answer_with_limits(self: FakeSlack, method: str, args: dict[str, Any], token: str | None, bad_json: bool,
                        bad_json_arg: str | None) -> _Reply:
    limits: SlackRateLimits | None = getattr(self, "_rate_limits", None)
    if limits is not None and not self._down and token == self.token:
        channel = args.get("channel")
        if method == "chat.postMessage" and channel:
            channel = self._resolve_channel(str(channel)) or str(channel)
        refused = limits.check(method, channel)
        if refused is not None:
            return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(refused[1])})
    return _answer_unlimited(self, method, args, token, bad_json, bad_json_arg)


_init_state_unlimited = FakeSlack._init_state


def _init_state_with_limits(self: FakeSlack) -> None:
    _init_state_unlimited(self)
    self._rate_limits = None  # reset() turns rate limits off


FakeSlack._init_state = _init_state_with_limits  # type: ignore[method-assign]
FakeSlack._answer = _answer_with_limits  # type: ignore[method-assign]
FakeSlack.enforce_rate_limits = _enforce_rate_limits  # type: ignore[attr-defined]
FakeSlack.stop_rate_limits = _stop_rate_limits  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------------------
# Sign in with Slack (OpenID Connect), self-contained: the authorize page, openid.connect.token and
# openid.connect.userInfo, as https://api.slack.com/authentication/sign-in-with-slack describes them.
#
#   fake.openid_client(client_id, client_secret)   the Slack app's OAuth credentials
#   fake.openid_sign_in_as(user_id)                who "signs in" on the authorize page (None: they cancel)
#   fake.openid_authorize_url                      SLACK_AUTHORIZE_URL for the app under test
#
# The authorize page (GET /openid/connect/authorize) redirects to redirect_uri with a one-time code and
# the state it was given; the token method checks the client (HTTP Basic, as slack_sdk sends it, or
# form fields), the code and the redirect_uri, and answers a user token; userInfo answers that user's
# OpenID claims for that token.
# ----------------------------------------------------------------------------------------------------------

import base64 as _b64  # noqa: E402
import secrets as _secrets  # noqa: E402
from urllib.parse import urlencode as _urlencode  # noqa: E402

_dispatch_before_openid = FakeSlack._dispatch
_reset_before_openid = FakeSlack._init_state


def _openid_init_state(self: FakeSlack) -> None:
    _reset_before_openid(self)
    self._openid_client: tuple[str, str] | None = None
    self._openid_user: str | None = None
    self._openid_codes: dict[str, tuple[str, str]] = {}  # code -> (user, redirect_uri)
    self._openid_tokens: dict[str, str] = {}  # user token -> user


def _openid_client(self: FakeSlack, client_id: str, client_secret: str) -> None:
    with self._lock:
        self._openid_client = (client_id, client_secret)


def _openid_sign_in_as(self: FakeSlack, user_id: str | None) -> None:
    with self._lock:
        self._openid_user = user_id


def _openid_authorize_url(self: FakeSlack) -> str:
    return self.url[: -len("api/")] + "openid/connect/authorize"


def _openid_dispatch(self: FakeSlack, path: str, query: str, headers: dict[str, str], body: bytes) -> _Reply:
    if path == "/openid/connect/authorize":
        return self._openid_authorize(dict(parse_qsl(query, keep_blank_values=True)))
    if path.rstrip("/") in ("/api/openid.connect.token", "/api/openid.connect.userInfo"):
        args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self._calls.append(Call(path[len("/api/"):].rstrip("/"), copy.deepcopy(args), dict(headers),
                                    time.time()))
            if path.rstrip("/").endswith("token"):
                return self._openid_token(args, headers.get("authorization", ""))
            return self._openid_userinfo(args, headers.get("authorization", ""))
    return _dispatch_before_openid(self, path, query, headers, body)


def _openid_authorize(self: FakeSlack, args: dict[str, str]) -> _Reply:
    with self._lock:
        client = self._openid_client
        if client is None or args.get("client_id") != client[0]:
            return _Reply(400, {"ok": False, "error": "invalid_client_id"})
        if args.get("response_type") != "code" or "openid" not in args.get("scope", "").split():
            return _Reply(400, {"ok": False, "error": "invalid_scope"})
        redirect = args.get("redirect_uri", "")
        if not redirect:
            return _Reply(400, {"ok": False, "error": "bad_redirect_uri"})
        if self._openid_user is None:
            query = {"error": "access_denied", "state": args.get("state", "")}
        else:
            code = _secrets.token_urlsafe(12)
            self._openid_codes[code] = (self._openid_user, redirect)
            query = {"code": code, "state": args.get("state", "")}
    sep = "&" if "?" in redirect else "?"
    return _Reply(302, {}, {"Location": redirect + sep + _urlencode(query)})


def _openid_token(self: FakeSlack, args: dict[str, str], authorization: str) -> _Reply:
    client_id, client_secret = args.get("client_id"), args.get("client_secret")
    if authorization.startswith("Basic "):
        client_id, _, client_secret = _b64.b64decode(authorization[6:]).decode().partition(":")
    if self._openid_client is None or client_id != self._openid_client[0]:
        return _Reply(200, {"ok": False, "error": "invalid_client_id"})
    if client_secret != self._openid_client[1]:
        return _Reply(200, {"ok": False, "error": "bad_client_secret"})
    grant = self._openid_codes.pop(args.get("code", ""), None)  # a code works once
    if grant is None:
        return _Reply(200, {"ok": False, "error": "invalid_code"})
    user, redirect = grant
    if args.get("redirect_uri") != redirect:
        return _Reply(200, {"ok": False, "error": "bad_redirect_uri"})
    token = "xoxp-" + _secrets.token_hex(8)
    self._openid_tokens[token] = user
    return _Reply(200, {"ok": True, "access_token": token, "token_type": "Bearer", "id_token": "fake.jwt.token"})


def _openid_userinfo(self: FakeSlack, args: dict[str, str], authorization: str) -> _Reply:
    token = authorization[7:].strip() if authorization.startswith("Bearer ") else args.get("token", "")
    user = self._openid_tokens.get(token)
    if user is None:
        return _Reply(200, {"ok": False, "error": "invalid_auth"})
    profile = self._users.get(user, {})
    return _Reply(200, {
        "ok": True, "sub": user, "https://slack.com/user_id": user, "https://slack.com/team_id": self.team_id,
        "name": profile.get("real_name") or profile.get("name") or user,
        "email": profile.get("profile", {}).get("email"),
        "https://slack.com/team_name": "Example Workspace", "https://slack.com/team_domain": "example",
    })


FakeSlack._init_state = _openid_init_state  # type: ignore[method-assign]
FakeSlack._dispatch = _openid_dispatch  # type: ignore[method-assign]
FakeSlack._openid_authorize = _openid_authorize  # type: ignore[attr-defined]
FakeSlack._openid_token = _openid_token  # type: ignore[attr-defined]
FakeSlack._openid_userinfo = _openid_userinfo  # type: ignore[attr-defined]
FakeSlack.openid_client = _openid_client  # type: ignore[attr-defined]
FakeSlack.openid_sign_in_as = _openid_sign_in_as  # type: ignore[attr-defined]
FakeSlack.openid_authorize_url = property(_openid_authorize_url)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ Socket Mode
# apps.connections.open takes the app-level token (xapp-...), and only that: a bot token there, or the app
# token on any other method, is `not_allowed_token_type` (https://docs.slack.dev/reference/methods/apps.connections.open).
# It answers with the websocket URL in `socket_mode_url`; the default is a closed port on 127.0.0.1, so the
# connection fails unless a test serves a websocket there. Tests set both with monkeypatch (the fake is shared).
FakeSlack.app_token = "xapp-1-A0TRIAGE01-1-fake"
FakeSlack.socket_mode_url = "ws://127.0.0.1:9/link/?ticket=fake"
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


def _check_app_token(fake: FakeSlack, method: str, token: str | None) -> _Reply:
    if method not in _APP_TOKEN_METHODS or token == fake.token:
        return _Reply(200, {"ok": False, "error": "not_allowed_token_type"})
    if token != fake.app_token:
        return _Reply(200, {"ok": False, "error": "invalid_auth"})
    return _Reply(200, {"ok": True, "url": fake.socket_mode_url})


_METHODS["apps.connections.open"] = lambda fake, args: {"url": fake.socket_mode_url}
