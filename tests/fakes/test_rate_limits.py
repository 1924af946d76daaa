"""The fakes' rate limits, seen through the real clients: 429 + Retry-After past the documented rates."""

from __future__ import annotations

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.gitlab_api import FakeGitLab, GitLabRateLimits
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
def slack():
    with FakeSlack(token="xoxb-t") as fake:
        fake.add_channel("C1")
        fake.add_channel("C2")
        yield fake


def test_post_message_is_limited_per_channel_with_a_burst(slack):
    limits = slack.enforce_rate_limits(post_channel_burst=3)
    client = WebClient(token="xoxb-t", base_url=slack.url, retry_handlers=[])
    for _ in range(3):
        client.chat_postMessage(channel="C1", text="hi")
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C1", text="hi")
    assert e.value.response.status_code == 429 and e.value.response["error"] == "ratelimited"
    assert int(e.value.response.headers["Retry-After"]) >= 1
    client.chat_postMessage(channel="C2", text="another channel has its own second")
    assert len(slack.messages_in("C1")) == 3  # the refused call posted nothing
    assert [ev.limited for ev in limits.events if ev.bucket == "chat.postMessage:C1"] == [False] * 3 + [True]


def test_tier_methods_have_their_per_minute_rate(slack):
    slack.enforce_rate_limits(tiers={"chat.update": 6}, burst_seconds=10)  # 6 a minute: a burst of 1
    client = WebClient(token="xoxb-t", base_url=slack.url, retry_handlers=[])
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    client.chat_update(channel="C1", ts=ts, text="y")
    with pytest.raises(SlackApiError) as e:
        client.chat_update(channel="C1", ts=ts, text="z")
    assert e.value.response.status_code == 429
    assert 1 <= int(e.value.response.headers["Retry-After"]) <= 10


def test_reset_turns_limits_off(slack):
    slack.enforce_rate_limits(post_channel_burst=1, post_per_channel_per_second=0.001)
    slack.reset()
    slack.add_channel("C1")
    client = WebClient(token="xoxb-t", base_url=slack.url, retry_handlers=[])
    for _ in range(5):
        client.chat_postMessage(channel="C1", text="hi")


def test_gitlab_issue_creation_per_minute():
    with FakeGitLab(token="glpat-t") as gitlab:
        gitlab.add_project("g/p", id=1)
        limits = gitlab.enforce_rate_limits(GitLabRateLimits(issues_per_minute=2))
        url = gitlab.url + "/api/v4/projects/1/issues"
        h = {"PRIVATE-TOKEN": "glpat-t"}
        assert [requests.post(url, json={"title": f"t{i}"}, headers=h, timeout=5).status_code
                for i in range(2)] == [201, 201]
        refused = requests.post(url, json={"title": "t3"}, headers=h, timeout=5)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Name"] == "issue_creation"
        assert requests.get(url, headers=h, timeout=5).status_code == 200  # reading is not issue creation
        assert len(gitlab.issues("g/p")) == 2
        assert sum(e.limited for e in limits.events) == 1
