import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from blocks.ids import ActionId
from blocks.request_card import (
    STATUS_CHOICES,
    CardData,
    ephemeral,
    landed_dm,
    needs_info_dm,
    parse_status_value,
    queued_dm,
    request_card,
    request_id_from_block_id,
    status_value,
    thread_reply,
)
from blocks.text import MESSAGE_BLOCKS_MAX, ZWJ
from tests.blocks.checks import mrkdwn_texts, validate_message, walk
from triage.core.fields import ASKS

RID = "01J9ZK3Q4XW8T5R2M7N6B0C1D2"
DEADLINE = datetime(2030, 5, 6, 15, 30, tzinfo=UTC)
NASTY = "<!channel> @here @everyone <script>alert(1)</script> <@U999> <!subteam^S1> & <https://x|y>"


def card(**changes) -> CardData:
    base = CardData(
        request_id=RID,
        reference="SAR-42",
        request_type="opportunity",
        queue_name="AMER East",
        customer_name="Acme",
        requester="U0AE1",
        asks=("demo", "pov"),
        why_now="Their renewal is in March and the CISO wants a review first.",
        pain="Releases take two weeks because pipelines are hand-maintained.",
        champion="Dana Kim",
        hosting="saas",
        opportunity_id="006000000000001AAA",
        deadline=DEADLINE,
        time_left_text="due in 5h",
        issue_url="https://gitlab.example.com/sa/amer-east/-/issues/7",
    )
    return replace(base, **changes)


def actions_of(message):
    blocks = [b for b in message["blocks"] if b["type"] == "actions"]
    assert len(blocks) <= 1
    return blocks[0] if blocks else None


def action_ids(message):
    block = actions_of(message)
    return [e["action_id"] for e in block["elements"]] if block else []


def test_open_card_has_the_essentials():
    message = request_card(card())
    validate_message(message)
    assert message["blocks"][0]["type"] == "header"
    assert "SAR-42" in message["blocks"][0]["text"]["text"]
    assert "Acme" in message["blocks"][0]["text"]["text"]
    texts = "\n".join(mrkdwn_texts(message))
    assert "<@U0AE1>" in texts
    assert "AMER East" in texts
    assert "Demo, Proof of value" in texts
    assert f"<!date^{int(DEADLINE.timestamp())}^" in texts and "due in 5h" in texts
    assert "006000000000001AAA" in texts
    assert "> Their renewal is in March" in texts
    assert "SAR-42" in message["text"] and "Acme" in message["text"]
    assert action_ids(message) == ["open_issue", "claim", "needs_info", "expedite_request", "decline"]
    issue = actions_of(message)["elements"][0]
    assert issue["url"] == "https://gitlab.example.com/sa/amer-east/-/issues/7"


def test_open_event_is_assigned_not_claimed():
    message = request_card(
        card(
            request_type="event",
            event_name="DevOps World",
            event_date=date(2030, 6, 1),
            event_location="London",
        )
    )
    validate_message(message)
    assert action_ids(message) == ["open_issue", "assign", "needs_info", "expedite_request", "decline"]
    assign = actions_of(message)["elements"][1]
    assert assign["type"] == "users_select"
    texts = "\n".join(mrkdwn_texts(message))
    assert "DevOps World" in texts and "London" in texts and "2030" in texts


@pytest.mark.parametrize("status", ["claimed", "doing", "waiting", "followup", "demo_ready"])
def test_claimed_card_offers_status_and_unclaim(status):
    message = request_card(card(status=status, owner="U0SA1", claimed_after_text="claimed after 3h"))
    validate_message(message)
    assert action_ids(message) == ["open_issue", "status", "unclaim", "needs_info", "expedite_request", "decline"]
    select = actions_of(message)["elements"][1]
    assert [parse_status_value(o["value"]) for o in select["options"]] == [(RID, s) for s in STATUS_CHOICES]
    assert list(STATUS_CHOICES) == ["doing", "waiting", "followup", "demo_ready", "done"]
    if status in STATUS_CHOICES:
        assert select["initial_option"]["value"] == status_value(RID, status)
    else:
        assert "initial_option" not in select
    texts = "\n".join(mrkdwn_texts(message))
    assert "<@U0SA1>" in texts and "claimed after 3h" in texts


def test_assigned_event_can_be_reassigned():
    message = request_card(card(request_type="event", status="doing", owner="U0SA1"))
    validate_message(message)
    assert action_ids(message) == ["open_issue", "status", "assign", "unclaim", "needs_info", "expedite_request",
                                   "decline"]
    assert actions_of(message)["elements"][2]["initial_user"] == "U0SA1"


def test_waiting_without_owner_can_still_be_claimed():
    message = request_card(card(status="waiting", owner=None))
    assert "claim" in action_ids(message) and "status" not in action_ids(message)


@pytest.mark.parametrize("status", ["done", "declined"])
def test_closed_card_has_no_actions_and_a_context_line(status):
    message = request_card(card(status=status, owner="U0SA1"))
    validate_message(message)
    assert actions_of(message) is None
    context = message["blocks"][-1]
    assert context["type"] == "context"
    line = context["elements"][0]["text"]
    assert ("Done" if status == "done" else "Declined") in line
    assert "gitlab.example.com" in line


def test_card_without_issue_says_it_is_being_filed():
    message = request_card(card(issue_url=None))
    validate_message(message)
    assert "open_issue" not in action_ids(message)
    assert any("being filed" in t for t in mrkdwn_texts(message))


@pytest.mark.parametrize(
    "message",
    [
        request_card(card()),
        request_card(card(status="doing", owner="U0SA1")),
        request_card(card(request_type="event")),
        request_card(card(request_type="event", status="claimed", owner="U0SA1")),
    ],
    ids=["open", "claimed", "event-open", "event-assigned"],
)
def test_every_action_element_carries_the_request_id(message):
    block = actions_of(message)
    assert request_id_from_block_id(block["block_id"]) == RID
    for element in block["elements"]:
        if element["type"] == "button":
            assert element["value"] == RID
        elif element["type"] == "static_select":
            for option in element["options"]:
                assert parse_status_value(option["value"])[0] == RID
        else:
            # users_select has no value in Slack's API: its block_id carries the id.
            assert element["type"] == "users_select"


def test_status_values_round_trip_even_with_colons():
    assert parse_status_value(status_value("a:b", "demo_ready")) == ("a:b", "demo_ready")
    with pytest.raises(ValueError):
        parse_status_value("nocolon")
    assert request_id_from_block_id("something_else") is None


def test_request_id_must_fit_an_option_value():
    with pytest.raises(ValueError):
        request_card(card(request_id="x" * 200))


def test_people_text_is_escaped_everywhere():
    message = request_card(
        card(
            customer_name=NASTY,
            queue_name=NASTY,
            why_now=NASTY,
            pain=NASTY,
            champion=NASTY,
            opportunity_id=NASTY,
            expedite=True,
            expedite_reason=NASTY,
            event_name=NASTY,
            event_location=NASTY,
            time_left_text=NASTY,
            claimed_after_text=NASTY,
            history=(NASTY, NASTY),
            status="doing",
            owner="U0SA1",
        )
    )
    validate_message(message)
    for text in [*mrkdwn_texts(message), message["text"]]:
        for bad in ("<!channel>", "<!here>", "<script>", "<@U999>", "<!subteam", "<https://x|y>"):
            assert bad not in text
        lowered = text.lower()
        for word in ("@here", "@everyone", "@channel"):
            assert word not in lowered, text
    assert any("&lt;!channel&gt;" in t for t in mrkdwn_texts(message))
    assert any("@" + ZWJ + "here" in t for t in mrkdwn_texts(message))


def test_fake_owner_ids_are_not_mentions():
    message = request_card(card(status="doing", owner="!channel", requester="<!here>"))
    for text in [*mrkdwn_texts(message), message["text"]]:
        assert "<!channel>" not in text and "<!here>" not in text


def test_long_text_is_shortened_for_display_with_a_pointer_to_the_issue():
    long = "The customer explained their situation in detail. " * 100
    message = request_card(card(why_now=long))
    validate_message(message)
    why = next(t for t in mrkdwn_texts(message) if t.startswith("*Why now*"))
    assert len(why) < len(long)
    assert "full text is in <https://gitlab.example.com/sa/amer-east/-/issues/7|the GitLab issue>" in why
    pain = next(t for t in mrkdwn_texts(message) if t.startswith("*Pain*"))
    assert "full text" not in pain


def test_longest_inputs_stay_within_message_limits():
    huge = ("x" * 50 + " <!here> & ") * 400  # ~24,000 characters
    message = request_card(
        card(
            reference="SAR-999999",
            customer_name=huge,
            queue_name=huge,
            asks=ASKS,
            why_now=huge,
            pain=huge,
            champion=huge,
            hosting="self_managed",
            opportunity_id=huge,
            expedite=True,
            expedite_reason=huge,
            event_name=huge,
            event_date=date(2030, 6, 1),
            event_location=huge,
            preferred_dates=(DEADLINE, DEADLINE),
            time_left_text=huge,
            issue_url="https://gitlab.example.com/" + "p/" * 1600,  # too long for a button url
            status="doing",
            owner="U0SA1",
            claimed_after_text=huge,
            history=tuple(huge for _ in range(100)),
        )
    )
    validate_message(message)
    assert len(message["blocks"]) <= MESSAGE_BLOCKS_MAX
    # Slack refuses messages with too much block text in total (msg_blocks_too_long, ~13,200 chars)
    text_total = sum(len(d["text"]) for d in walk(message["blocks"]) if isinstance(d.get("text"), str))
    assert text_total <= 9_000, text_total
    assert len(json.dumps(message)) < 20_000


def test_every_status_renders_a_valid_card():
    for status in ("open", "claimed", "doing", "waiting", "followup", "demo_ready", "done", "declined"):
        for request_type in ("opportunity", "follow_up", "security_assessment", "event"):
            owner = None if status == "open" else "U0SA1"
            validate_message(request_card(card(status=status, owner=owner, request_type=request_type)))


def test_landed_dm_links_the_card_and_the_issue():
    message = landed_dm(card(customer_name="<!here> Acme"), "https://slack.example.com/archives/C1/p1")
    validate_message(message)
    texts = "\n".join(mrkdwn_texts(message))
    assert "SAR-42" in texts and "AMER East" in texts and "<!date^" in texts
    assert "https://slack.example.com/archives/C1/p1" in texts
    assert "gitlab.example.com" in texts
    assert "<!here>" not in texts
    validate_message(landed_dm(card(issue_url=None, deadline=None), None))


def test_queued_dm_reassures():
    message = queued_dm("SAR-42", "GitLab")
    validate_message(message)
    assert message["text"] == (
        "GitLab is slow; your request *SAR-42* is saved and will be filed as soon as it answers"
        " — nothing to redo."
    )


def test_needs_info_dm_has_an_answer_button_with_the_id():
    message = needs_info_dm("SAR-42", RID, "What is <!here> the budget?" * 200, "U0SA1")
    validate_message(message)
    block = actions_of(message)
    assert [e["action_id"] for e in block["elements"]] == [ActionId.ANSWER]
    assert block["elements"][0]["value"] == RID
    assert all("<!here>" not in t for t in mrkdwn_texts(message))


def test_plain_replies():
    assert thread_reply("<@U1> claimed it") == {"text": "<@U1> claimed it"}
    assert ephemeral("Only you can see this") == {"text": "Only you can see this"}


def test_no_block_has_an_empty_text():
    for d in walk(request_card(card(why_now="  ", pain=None, history=("", "ok")))):
        if d.get("type") in ("mrkdwn", "plain_text"):
            assert d["text"].strip()


def test_deadline_shows_in_reader_and_queue_time():
    from datetime import UTC, datetime

    from blocks.request_card import CardData, request_card

    card = CardData(request_id="7", reference="SAR-7", request_type="opportunity", queue_name="AMER East",
                    customer_name="Acme", requester="U0AE00001",
                    deadline=datetime(2026, 11, 24, 20, 0, tzinfo=UTC), queue_tz="America/New_York",
                    time_left_text="due in 21h")
    text = str(request_card(card)["blocks"])
    assert "<!date^1795550400^" in text  # each reader's own zone
    assert "Tue 24 Nov 15:00 EST (queue)" in text and "due in 21h" in text
