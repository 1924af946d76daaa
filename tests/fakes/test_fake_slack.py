"""The fake Slack Web API, driven by the real slack_sdk clients over HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        f.add_channel("C0INTAKE", name="sa-requests")
        f.add_user("U0ALICE", name="alice", real_name="Alice Able", email="alice@example.com")
        yield f


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.token, base_url=fake.url, retry_handlers=[])


def _async_client(fake: FakeSlack, **kwargs) -> AsyncWebClient:
    return AsyncWebClient(token=fake.token, base_url=fake.url, retry_handlers=[], **kwargs)


def _modal(title: str = "New SA request", **extra) -> dict:
    view = {
        "type": "modal",
        "callback_id": "sa_request",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": "summary",
                "label": {"type": "plain_text", "text": "Summary"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }
    view.update(extra)
    return view


def _error(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return exc.value.response["error"]


# -- basics ---------------------------------------------------------------------------------------------


def test_url_and_auth_test(fake: FakeSlack, client: WebClient) -> None:
    assert fake.url.startswith("http://127.0.0.1:") and fake.url.endswith("/api/")
    resp = client.auth_test()
    assert resp["ok"] is True
    assert resp["team_id"] == "T0001"
    assert resp["user_id"] == "U0BOT"
    assert resp["bot_id"].startswith("B")
    assert resp["url"].startswith("https://")
    call = fake.calls_to("auth.test")[0]
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert call.at > 0


def test_invalid_token(fake: FakeSlack) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=fake.url, retry_handlers=[])
    with pytest.raises(SlackApiError) as exc:
        bad.auth_test()
    assert _error(exc) == "invalid_auth"
    assert exc.value.response.status_code == 200


def test_missing_token(fake: FakeSlack) -> None:
    anon = WebClient(base_url=fake.url, retry_handlers=[])
    with pytest.raises(SlackApiError) as exc:
        anon.auth_test()
    assert _error(exc) == "not_authed"


def test_token_in_form_body_is_accepted(fake: FakeSlack) -> None:
    req = urllib.request.Request(
        fake.url + "auth.test",
        data=b"token=xoxb-test",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["ok"] is True
    assert "token" not in fake.calls_to("auth.test")[0].args


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.api_call("nope.nothing")
    assert _error(exc) == "unknown_method"


def test_non_api_path_is_404(fake: FakeSlack) -> None:
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(fake.url.replace("/api/", "/elsewhere"), timeout=5)
    assert exc.value.code == 404
    exc.value.close()


# -- messages -------------------------------------------------------------------------------------------


def test_post_thread_update_and_permalink(fake: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*New request*"}}]
    parent = client.chat_postMessage(channel="C0INTAKE", text="New request", blocks=blocks)
    assert parent["channel"] == "C0INTAKE"
    assert parent["message"]["blocks"] == blocks
    reply = client.chat_postMessage(channel="C0INTAKE", text="details", thread_ts=parent["ts"])
    broadcast = client.chat_postMessage(
        channel="C0INTAKE", text="also", thread_ts=parent["ts"], reply_broadcast=True, unfurl_links=False
    )
    assert float(parent["ts"]) < float(reply["ts"]) < float(broadcast["ts"])
    assert parent["ts"].count(".") == 1 and len(parent["ts"].split(".")[1]) == 6

    assert [m["ts"] for m in fake.messages_in("C0INTAKE")] == [parent["ts"], reply["ts"], broadcast["ts"]]
    assert [m["text"] for m in fake.messages_in("C0INTAKE", thread_ts=parent["ts"])] == ["details", "also"]
    top_level = fake.messages_in("C0INTAKE", top_level_only=True)
    assert [m["ts"] for m in top_level] == [parent["ts"], broadcast["ts"]]
    assert fake.message("C0INTAKE", broadcast["ts"])["reply_broadcast"] is True
    assert fake.message("C0INTAKE", broadcast["ts"])["unfurl_links"] is False
    assert fake.message("C0INTAKE", parent["ts"])["reply_count"] == 2

    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Assigned*"}}]
    upd = client.chat_update(channel="C0INTAKE", ts=parent["ts"], text="Assigned", blocks=new_blocks)
    assert upd["ts"] == parent["ts"] and upd["text"] == "Assigned" and upd["channel"] == "C0INTAKE"
    current = fake.message("C0INTAKE", parent["ts"])
    assert current["text"] == "Assigned" and current["blocks"] == new_blocks and current["edited"]
    assert fake.messages[0]["text"] == "Assigned"

    link = client.chat_getPermalink(channel="C0INTAKE", message_ts=parent["ts"])["permalink"]
    assert link == f"https://example.slack.com/archives/C0INTAKE/p{parent['ts'].replace('.', '')}"
    reply_link = client.chat_getPermalink(channel="C0INTAKE", message_ts=reply["ts"])["permalink"]
    assert f"thread_ts={parent['ts']}" in reply_link


def test_update_unknown_message(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C0INTAKE", ts="1.000001", text="x")
    assert _error(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_getPermalink(channel="C0INTAKE", message_ts="1.000001")
    assert _error(exc) == "message_not_found"


def test_post_channel_checks(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C0OUTSIDE", is_member=False)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0UNKNOWN", text="x")
    assert _error(exc) == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0OUTSIDE", text="x")
    assert _error(exc) == "not_in_channel"
    # slack_sdk itself warns about the missing text
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning):
        client.chat_postMessage(channel="C0INTAKE")
    assert _error(exc) == "no_text"
    assert fake.messages == []


def test_post_too_many_blocks(fake: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "divider"} for _ in range(51)]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0INTAKE", text="x", blocks=blocks)
    assert _error(exc) == "invalid_blocks"
    assert exc.value.response["response_metadata"]["messages"]
    client.chat_postMessage(channel="C0INTAKE", text="x", blocks=blocks[:50])


def test_dm_via_user_id_and_conversations_open(fake: FakeSlack, client: WebClient) -> None:
    opened = client.conversations_open(users="U0ALICE")
    dm = opened["channel"]["id"]
    assert dm.startswith("D")
    assert client.conversations_open(users=["U0ALICE"])["channel"]["id"] == dm
    assert fake.dm_channel("U0ALICE") == dm

    by_user = client.chat_postMessage(channel="U0ALICE", text="hi via user id")
    by_dm = client.chat_postMessage(channel=dm, text="hi via dm")
    assert by_user["channel"] == dm == by_dm["channel"]
    assert [m["text"] for m in fake.messages_in("U0ALICE")] == ["hi via user id", "hi via dm"]

    info = client.conversations_info(channel=dm)["channel"]
    assert info["is_im"] is True and info["user"] == "U0ALICE"
    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users="U0NOBODY")
    assert _error(exc) == "user_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="D0NOTOPEN", text="x")
    assert _error(exc) == "channel_not_found"


def test_conversations_info(fake: FakeSlack, client: WebClient) -> None:
    info = client.conversations_info(channel="C0INTAKE")["channel"]
    assert info["id"] == "C0INTAKE" and info["name"] == "sa-requests" and info["is_member"] is True
    with pytest.raises(SlackApiError) as exc:
        client.conversations_info(channel="C0NOPE")
    assert _error(exc) == "channel_not_found"


def test_post_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    resp = client.chat_postEphemeral(channel="C0INTAKE", user="U0ALICE", text="only you")
    assert resp["message_ts"]
    assert fake.ephemerals == [
        {
            "channel": "C0INTAKE",
            "user": "U0ALICE",
            "message_ts": resp["message_ts"],
            "thread_ts": None,
            "text": "only you",
            "blocks": [],
        }
    ]
    assert fake.messages == []


def test_concurrent_posts_get_unique_ts(fake: FakeSlack, client: WebClient) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda i: client.chat_postMessage(channel="C0INTAKE", text=str(i)), range(24))
        )
    assert len({r["ts"] for r in results}) == 24
    assert len(fake.calls_to("chat.postMessage")) == 24
    assert len(fake.messages) == 24


# -- views ----------------------------------------------------------------------------------------------


def test_views_open_and_trigger_reuse(fake: FakeSlack, client: WebClient) -> None:
    trigger = fake.new_trigger_id()
    view = client.views_open(trigger_id=trigger, view=_modal(private_metadata='{"c": 1}'))["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert view["callback_id"] == "sa_request" and view["private_metadata"] == '{"c": 1}'
    assert fake.views[view["id"]]["title"]["text"] == "New SA request"
    assert fake.calls_to("views.open")[0].args["view"]["type"] == "modal"

    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=trigger, view=_modal())
    assert _error(exc) == "expired_trigger_id"
    assert len(fake.views) == 1


def test_views_open_oversized_title(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id="t1", view=_modal(title="x" * 25))
    assert _error(exc) == "invalid_arguments"
    messages = exc.value.response["response_metadata"]["messages"]
    assert any("/view/title/text" in m for m in messages)
    assert fake.views == {}
    # the trigger was not consumed by the rejected call
    client.views_open(trigger_id="t1", view=_modal(title="x" * 24))


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda v: v.update(blocks=[]), "/view/blocks"),
        (lambda v: v.update(blocks=[{"type": "divider"}] * 101), "/view/blocks"),
        (lambda v: v.update(callback_id="c" * 256), "/view/callback_id"),
        (lambda v: v.update(private_metadata="m" * 3001), "/view/private_metadata"),
        (lambda v: v["submit"].update(text="s" * 25), "/view/submit/text"),
        (lambda v: v.pop("submit"), "/view/submit"),
        (lambda v: v["title"].update(type="mrkdwn"), "/view/title/type"),
        (lambda v: v["blocks"][0].update(block_id="b" * 256), "/view/blocks/0/block_id"),
        (lambda v: v["blocks"][0]["element"].update(action_id="a" * 256), "/view/blocks/0/element/action_id"),
        (lambda v: v["blocks"][0]["label"].update(text="l" * 2001), "/view/blocks/0/label/text"),
        (
            lambda v: v["blocks"][0]["element"].update(placeholder={"type": "plain_text", "text": "p" * 151}),
            "/view/blocks/0/element/placeholder/text",
        ),
    ],
)
def test_views_open_validation(client: WebClient, mutate, pointer: str) -> None:
    view = _modal()
    mutate(view)
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id="t", view=view)
    assert _error(exc) == "invalid_arguments"
    assert any(f"[json-pointer:{pointer}]" in m for m in exc.value.response["response_metadata"]["messages"])


def _select_modal(options: list[dict]) -> dict:
    return _modal(
        blocks=[
            {
                "type": "input",
                "block_id": "label",
                "label": {"type": "plain_text", "text": "Label"},
                "element": {"type": "static_select", "action_id": "pick", "options": options},
            }
        ]
    )


def _opt(text: str, value: str) -> dict:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def test_views_open_select_option_limits(client: WebClient) -> None:
    ok = [_opt(f"label {i}", str(i)) for i in range(100)]
    client.views_open(trigger_id="ok", view=_select_modal(ok))
    for trigger, options, pointer in [
        ("many", [*ok, _opt("one more", "x")], "/view/blocks/0/element/options"),
        ("text", [_opt("t" * 76, "1")], "/view/blocks/0/element/options/0/text/text"),
        ("value", [_opt("t", "v" * 151)], "/view/blocks/0/element/options/0/value"),
    ]:
        with pytest.raises(SlackApiError) as exc:
            client.views_open(trigger_id=trigger, view=_select_modal(options))
        assert _error(exc) == "invalid_arguments"
        assert any(pointer in m for m in exc.value.response["response_metadata"]["messages"]), trigger


def test_views_open_form_encoded_view(fake: FakeSlack, client: WebClient) -> None:
    resp = client.api_call("views.open", params={"trigger_id": "form", "view": json.dumps(_modal())})
    assert resp["view"]["id"] in fake.views
    ctype = fake.calls_to("views.open")[0].headers["content-type"]
    assert ctype.startswith("application/x-www-form-urlencoded")


def test_views_update_push_publish(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id="t", view=_modal(external_id="req-1"))["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal(title="Step 2"))
    updated = updated["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert fake.views[opened["id"]]["title"]["text"] == "Step 2"

    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal())
    assert _error(exc) == "hash_conflict"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id="V0NOPE", view=_modal())
    assert _error(exc) == "not_found"

    by_ext = client.views_update(external_id="req-1", view=_modal(title="Step 3"))["view"]
    assert by_ext["id"] == opened["id"] and fake.views[opened["id"]]["title"]["text"] == "Step 3"

    pushed = client.views_push(trigger_id="t2", view=_modal(title="Pushed"))["view"]
    assert pushed["id"] != opened["id"] and pushed["id"] in fake.views

    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    first = client.views_publish(user_id="U0ALICE", view=home)["view"]
    again = client.views_publish(user_id="U0ALICE", view=home)["view"]
    assert first["type"] == "home" and first["id"] == again["id"]
    assert fake.home_view("U0ALICE")["id"] == first["id"]
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U0ALICE", view={**home, "submit": {"type": "plain_text", "text": "x"}})
    assert _error(exc) == "invalid_arguments"


# -- users ----------------------------------------------------------------------------------------------


def test_users_info_shape(fake: FakeSlack, client: WebClient) -> None:
    user = client.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE" and user["name"] == "alice" and user["real_name"] == "Alice Able"
    assert user["team_id"] == "T0001" and user["is_bot"] is False and user["deleted"] is False
    assert user["profile"]["email"] == "alice@example.com"
    assert user["profile"]["real_name"] == "Alice Able"
    assert user["tz"] == "America/New_York"
    assert user["tz_label"] in ("Eastern Standard Time", "Eastern Daylight Time")
    assert user["tz_offset"] in (-18000, -14400)
    # the sync client sends users.info as a form body
    assert fake.calls_to("users.info")[0].args == {"user": "U0ALICE"}

    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U0NOBODY")
    assert _error(exc) == "user_not_found"


def test_users_lookup_by_email(fake: FakeSlack, client: WebClient) -> None:
    assert client.users_lookupByEmail(email="ALICE@example.com")["user"]["id"] == "U0ALICE"
    with pytest.raises(SlackApiError) as exc:
        client.users_lookupByEmail(email="nobody@example.com")
    assert _error(exc) == "users_not_found"


def test_usergroups_users_list(fake: FakeSlack, client: WebClient) -> None:
    fake.add_usergroup("S0SAS", ["U0ALICE", "U0BOB"])
    assert client.usergroups_users_list(usergroup="S0SAS")["users"] == ["U0ALICE", "U0BOB"]
    with pytest.raises(SlackApiError) as exc:
        client.usergroups_users_list(usergroup="S0NOPE")
    assert _error(exc) == "no_such_subteam"


# -- failure injection ----------------------------------------------------------------------------------


def test_rate_limited_with_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=7, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C0INTAKE", text="x")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "7"
        assert _error(exc) == "ratelimited"
    client.chat_postMessage(channel="C0INTAKE", text="x")
    assert len(fake.messages) == 1
    assert len(fake.calls_to("chat.postMessage")) == 3


def test_fail_fifo_and_wildcard(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("users.info", error="fatal_error")
    fake.fail("users.info", status=500)
    fake.fail("*", error="team_access_not_granted")
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U0ALICE")
    assert _error(exc) == "fatal_error" and exc.value.response.status_code == 200
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U0ALICE")
    assert exc.value.response.status_code == 500
    with pytest.raises(SlackApiError) as exc:
        client.auth_test()
    assert _error(exc) == "team_access_not_granted"
    client.users_info(user="U0ALICE")
    client.auth_test()
    with pytest.raises(ValueError):
        fake.fail("auth.test")


def test_set_down(fake: FakeSlack, client: WebClient) -> None:
    fake.set_down(True)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0INTAKE", text="x")
    assert exc.value.response.status_code == 503
    assert fake.messages == []
    assert len(fake.calls) == 1
    fake.set_down(False)
    client.chat_postMessage(channel="C0INTAKE", text="x")


def test_set_delay_times_out_client_but_takes_effect(fake: FakeSlack) -> None:
    fake.set_delay("chat.postMessage", 5)
    impatient = WebClient(token=fake.token, base_url=fake.url, retry_handlers=[], timeout=0.2)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        impatient.chat_postMessage(channel="C0INTAKE", text="slow")
    assert [m["text"] for m in fake.messages] == ["slow"]
    impatient.auth_test()  # other methods are not delayed
    fake.set_delay("chat.postMessage", 0)
    impatient.chat_postMessage(channel="C0INTAKE", text="fast")


def test_reset(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C0INTAKE", text="x")
    fake.fail("*", error="fatal_error")
    fake.reset()
    assert fake.calls == [] and fake.messages == [] and fake.views == {}
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0INTAKE", text="x")
    assert _error(exc) == "channel_not_found"  # seeded channels are gone too
    assert client.auth_test()["user_id"] == "U0BOT"


# -- async client ---------------------------------------------------------------------------------------


def test_async_client_roundtrip(fake: FakeSlack) -> None:
    fake.add_usergroup("S0SAS", ["U0ALICE"])

    async def run() -> None:
        client = _async_client(fake)
        posted = await client.chat_postMessage(channel="C0INTAKE", text="async hello")
        await client.chat_update(channel="C0INTAKE", ts=posted["ts"], text="async edited")
        user = (await client.users_info(user="U0ALICE"))["user"]
        assert user["profile"]["email"] == "alice@example.com"
        assert (await client.usergroups_users_list(usergroup="S0SAS"))["users"] == ["U0ALICE"]
        await client.views_open(trigger_id="a1", view=_modal())
        with pytest.raises(SlackApiError) as exc:
            await client.views_open(trigger_id="a1", view=_modal())
        assert _error(exc) == "expired_trigger_id"

    asyncio.run(run())
    assert fake.messages[0]["text"] == "async edited"
    # AsyncWebClient sends GET methods as a query string
    assert fake.calls_to("users.info")[0].args["user"] == "U0ALICE"


def test_async_rate_limit_and_down(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=3)

    async def run() -> None:
        client = _async_client(fake)
        with pytest.raises(SlackApiError) as exc:
            await client.chat_postMessage(channel="C0INTAKE", text="x")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "3"
        fake.set_down(True)
        with pytest.raises(SlackApiError) as exc:
            await client.auth_test()
        assert exc.value.response.status_code == 503
        bad = AsyncWebClient(token="xoxb-nope", base_url=fake.url, retry_handlers=[])
        fake.set_down(False)
        with pytest.raises(SlackApiError) as exc:
            await bad.auth_test()
        assert _error(exc) == "invalid_auth"

    asyncio.run(run())


def test_async_timeout(fake: FakeSlack) -> None:
    fake.set_delay("*", 5)

    async def run() -> None:
        client = _async_client(fake, timeout=0.2)
        with pytest.raises(asyncio.TimeoutError):
            await client.auth_test()

    asyncio.run(run())
