"""The request form's rules, per type, as an AE submitting the Slack modal would meet them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from triage.core.fields import (
    ASK_LABELS,
    ASKS,
    FORM_FIELDS,
    HOSTING,
    HOSTING_LABELS,
    MAX_LENGTH,
    MULTILINE,
    REQUEST_TYPES,
    REQUIRED,
    TYPE_LABELS,
    validate,
)

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday afternoon
QUEUES = frozenset({"amer-east", "emea"})
OPP_15 = "0065g00000AbCdE"
OPP_18 = "0065g00000AbCdEAAV"
SENTENCE = "Their renewal is due in March and the budget is approved."
PAIN = "Builds take forty minutes, so releases slip every sprint."


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def good(request_type: str) -> dict:
    """A complete, valid submission of each type, as Slack's view state gives it."""
    common = {
        "request_type": request_type,
        "queue": "amer-east",
        "customer_name": "Acme Corp",
        "expedite": [],
    }
    per_type = {
        "opportunity": {
            "opportunity": OPP_15,
            "command_plan_url": "https://docs.example.com/command-plan/acme",
            "why_now": SENTENCE,
            "pain": PAIN,
            "champion": "Jane Roe, VP Engineering",
            "asks": ["demo", "pov"],
            "hosting": "saas",
        },
        "follow_up": {"opportunity": OPP_18, "asks": ["technical_qa"]},
        "security_assessment": {
            "opportunity": OPP_15,
            "asks": ["security_questionnaire"],
            "hosting": "dedicated",
        },
        "event": {
            "event_name": "DevOps Days",
            "event_location": "Boston",
            "event_competency": "CI/CD",
            "event_date": "2026-12-10",
        },
    }
    return {**common, **per_type[request_type]}


def run(values, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("queue_keys", QUEUES)
    return validate(values, **kw)


def with_(request_type: str, **changes) -> dict:
    return {**good(request_type), **changes}


# --- shape of the form ---


def test_constants_follow_the_contract():
    assert REQUEST_TYPES == ("opportunity", "follow_up", "security_assessment", "event")
    assert ASKS == (
        "demo",
        "technical_qa",
        "pov",
        "sow",
        "security_questionnaire",
        "architecture_review",
        "workshop",
        "rfp",
        "other",
    )
    assert HOSTING == ("self_managed", "saas", "dedicated", "undecided")
    assert set(TYPE_LABELS) == set(REQUEST_TYPES)
    assert set(ASK_LABELS) == set(ASKS)
    assert set(HOSTING_LABELS) == set(HOSTING)
    assert ASK_LABELS["technical_qa"] == "Technical Q&A"
    assert ASK_LABELS["pov"] == "Proof of value"
    assert ASK_LABELS["sow"] == "SOW / services"
    # Slack shows option text up to 75 characters.
    assert all(len(label) <= 75 for d in (TYPE_LABELS, ASK_LABELS, HOSTING_LABELS) for label in d.values())


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_every_form_starts_with_type_queue_customer_and_offers_expedite(request_type):
    fields = FORM_FIELDS[request_type]
    assert fields[:3] == ("request_type", "queue", "customer_name")
    assert fields[-2:] == ("expedite", "expedite_reason")
    assert len(set(fields)) == len(fields)
    assert REQUIRED[request_type] <= set(fields)


@pytest.mark.parametrize(
    ("request_type", "required"),
    [
        (
            "opportunity",
            {"opportunity", "command_plan_url", "why_now", "pain", "champion", "asks", "hosting"},
        ),
        ("follow_up", {"opportunity", "asks"}),
        ("security_assessment", {"opportunity", "asks", "hosting"}),
        ("event", {"event_name", "event_location", "event_competency", "event_date"}),
    ],
)
def test_required_fields_follow_the_contract_table(request_type, required):
    assert REQUIRED[request_type] == {"request_type", "queue", "customer_name"} | required


def test_max_lengths_fit_slack():
    assert all(1 <= n <= 3000 for n in MAX_LENGTH.values())
    assert MAX_LENGTH["customer_name"] == 255
    assert MAX_LENGTH["opportunity"] == 500
    assert MAX_LENGTH["expedite_reason"] == 1000
    assert all(MAX_LENGTH[f] == 3000 for f in MULTILINE - {"expedite_reason"})
    text_fields = {f for fields in FORM_FIELDS.values() for f in fields} - {
        "request_type",
        "queue",
        "asks",
        "hosting",
        "preferred_date_1",
        "preferred_date_2",
        "expedite",
        "event_date",
    }
    assert set(MAX_LENGTH) == text_fields


# --- whole submissions ---


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_a_complete_form_of_each_type_is_accepted(request_type):
    result = run(good(request_type))
    assert result.ok, result.errors
    assert result.errors == {}
    assert result.cleaned["request_type"] == request_type
    assert result.cleaned["queue"] == "amer-east"
    assert result.cleaned["expedite"] is False
    if request_type != "event":
        assert result.cleaned["opportunity"] == OPP_18


def test_cleaned_values_are_stripped_parsed_and_empty_optionals_omitted():
    values = with_(
        "opportunity",
        customer_name="  Acme Corp \n",
        champion="\tJane Roe ",
        meeting_objective="   ",
        capabilities=None,
        current_tools="",
        additional_context="  Loves YAML.  ",
        preferred_date_1=None,
        preferred_date_2=None,
    )
    cleaned = run(values).cleaned
    assert cleaned["customer_name"] == "Acme Corp"
    assert cleaned["champion"] == "Jane Roe"
    assert cleaned["additional_context"] == "Loves YAML."
    for absent in (
        "meeting_objective",
        "capabilities",
        "current_tools",
        "preferred_date_1",
        "preferred_date_2",
    ):
        assert absent not in cleaned
    assert cleaned["asks"] == ["demo", "pov"]
    assert cleaned["hosting"] == "saas"


@pytest.mark.parametrize("value", [None, "", "   ", "incident", "Opportunity"])
def test_missing_or_unknown_type_gives_only_that_error(value):
    result = run({"request_type": value, "queue": "nowhere", "customer_name": ""})
    assert not result.ok
    assert list(result.errors) == ["request_type"]


@pytest.mark.parametrize(
    ("request_type", "field"),
    [(t, f) for t in REQUEST_TYPES for f in sorted(REQUIRED[t] - {"request_type"})],
)
@pytest.mark.parametrize("blank", [None, "", "   \n\t"])
def test_each_required_field_must_be_filled(request_type, field, blank):
    value = [] if field == "asks" and blank == "" else blank
    result = run(with_(request_type, **{field: value}))
    assert list(result.errors) == [field]
    assert result.errors[field]
    assert field not in result.cleaned


@pytest.mark.parametrize(
    ("request_type", "field"),
    [
        ("follow_up", "hosting"),
        ("follow_up", "why_now"),
        ("follow_up", "parent_request"),
        ("security_assessment", "champion"),
        ("event", "opportunity"),
        ("event", "asks"),
        ("opportunity", "preferred_date_1"),
        ("opportunity", "additional_context"),
    ],
)
def test_optional_fields_may_be_left_empty(request_type, field):
    values = with_(request_type, **{field: None})
    result = run(values)
    assert result.ok, result.errors
    assert field not in result.cleaned


@pytest.mark.parametrize(
    ("request_type", "field", "junk"),
    [
        ("follow_up", "pain", "TBD"),
        ("follow_up", "command_plan_url", "not a url"),
        ("security_assessment", "why_now", "n/a"),
        ("event", "hosting", "mainframe"),
        ("opportunity", "event_date", "2020-01-01"),
        ("opportunity", "parent_request", "x" * 5000),
        ("event", "preferred_date_1", epoch(NOW - timedelta(days=3))),
    ],
)
def test_fields_the_form_does_not_show_for_this_type_are_ignored(request_type, field, junk):
    result = run(with_(request_type, **{field: junk}))
    assert result.ok, result.errors
    assert field not in result.cleaned


# --- length ---


@pytest.mark.parametrize(
    ("request_type", "field"),
    [(t, f) for t in REQUEST_TYPES for f in FORM_FIELDS[t] if f in MAX_LENGTH and f != "expedite_reason"],
)
def test_over_long_text_is_refused_not_truncated(request_type, field):
    limit = MAX_LENGTH[field]
    text = ("word " * limit)[: limit + 1]
    result = run(with_(request_type, **{field: text}))
    assert result.errors[field] == f"Keep this under {limit} characters (now {limit + 1})."
    assert field not in result.cleaned


def test_text_exactly_at_the_limit_is_kept_whole():
    name = "A" * MAX_LENGTH["customer_name"]
    result = run(with_("opportunity", customer_name=name))
    assert result.ok
    assert result.cleaned["customer_name"] == name


def test_over_long_expedite_reason_is_refused():
    result = run(with_("event", expedite=["expedite"], expedite_reason="x" * 1001))
    assert result.errors == {"expedite_reason": "Keep this under 1000 characters (now 1001)."}


# --- selects ---


@pytest.mark.parametrize(
    ("queue", "ok"), [("amer-east", True), ("emea", True), ("apac", False), ("AMER-EAST", False)]
)
def test_queue_must_be_a_configured_key(queue, ok):
    result = run(with_("follow_up", queue=queue))
    assert result.ok is ok
    if not ok:
        assert list(result.errors) == ["queue"]
        assert queue in result.errors["queue"]


@pytest.mark.parametrize(
    ("hosting", "ok"), [*((h, True) for h in HOSTING), ("on_prem", False), ("SaaS", False)]
)
def test_hosting_must_be_a_listed_option(hosting, ok):
    result = run(with_("security_assessment", hosting=hosting))
    assert result.ok is ok
    if ok:
        assert result.cleaned["hosting"] == hosting
    else:
        assert list(result.errors) == ["hosting"]


@pytest.mark.parametrize(
    ("asks", "cleaned"),
    [
        (["pov", "demo"], ["demo", "pov"]),
        (["other", "demo", "other", "demo"], ["demo", "other"]),
        (list(reversed(ASKS)), list(ASKS)),
        (["rfp"], ["rfp"]),
    ],
)
def test_asks_come_back_in_form_order_without_duplicates(asks, cleaned):
    assert run(with_("follow_up", asks=asks)).cleaned["asks"] == cleaned


@pytest.mark.parametrize("asks", [["demo", "lunch"], ["Demo"]])
def test_unknown_asks_are_refused(asks):
    result = run(with_("follow_up", asks=asks))
    assert list(result.errors) == ["asks"]


# --- opportunity and links ---


@pytest.mark.parametrize(
    "given",
    [
        OPP_15,
        OPP_18,
        f"https://acme.lightning.force.com/lightning/r/Opportunity/{OPP_18}/view",
        f"https://acme.my.salesforce.com/{OPP_15}",
    ],
)
def test_opportunity_is_cleaned_to_the_18_char_id(given):
    assert run(with_("security_assessment", opportunity=given)).cleaned["opportunity"] == OPP_18


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("0015g00000AbCdE", "001 is an Account id"),
        ("0065g00000AbCdEAAB", "last three characters don't match"),
        ("0065g00000", "15 or 18 characters"),
        ("006/5g00000AbCdE", "doesn't contain a Salesforce record id"),
    ],
)
def test_bad_opportunity_ids_explain_the_problem(given, message):
    result = run(with_("opportunity", opportunity=given))
    assert list(result.errors) == ["opportunity"]
    assert message in result.errors["opportunity"]


def test_event_opportunity_is_optional_but_checked_when_given():
    assert run(with_("event", opportunity="0015g00000AbCdE")).errors.keys() == {"opportunity"}
    assert run(with_("event", opportunity=OPP_15)).cleaned["opportunity"] == OPP_18


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://docs.example.com/d/abc/edit#heading=h.1", True),
        ("http://wiki.internal/cp?id=4", True),
        ("HTTPS://DOCS.EXAMPLE.COM/CP", True),
        ("docs.example.com/cp", False),
        ("ftp://files.example.com/cp", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://docs.example.com/command plan", False),
        ("see command plan", False),
    ],
)
def test_command_plan_must_be_an_http_link(url, ok):
    result = run(with_("opportunity", command_plan_url=url))
    assert result.ok is ok
    if not ok:
        assert list(result.errors) == ["command_plan_url"]


# --- sentence form ---

PLACEHOLDERS = [
    "TBD",
    "tbd.",
    "TBA",
    "N/A",
    "n/a",
    "NA",
    "None",
    "see command plan",
    "See Command Plan.",
    "see CP",
    "in command plan",
    "see notes",
    "See above",
    "see opp",
    "see Salesforce",
    "same as above",
    "TODO",
    "-",
    "?",
    "...",
    "TBD TBD TBD TBD TBD TBD",
    "n/a n/a n/a n/a n/a n/a n/a",
    "see the command plan for more details please",
    "TBD - see the command plan in Salesforce, thanks",
    "word word word word word word word",
    "a b a b a b",
]


@pytest.mark.parametrize("field", ["why_now", "pain"])
@pytest.mark.parametrize("text", PLACEHOLDERS)
def test_placeholders_are_refused_for_why_now_and_pain(field, text):
    result = run(with_("opportunity", **{field: text}))
    assert list(result.errors) == [field]


@pytest.mark.parametrize("text", ["Renewal in March.", "Budget approved for Q3 now", "Needs it soon"])
def test_fewer_than_six_words_is_refused_with_a_count(text):
    result = run(with_("opportunity", pain=text))
    assert "at least 6 words" in result.errors["pain"]


@pytest.mark.parametrize(
    "text",
    [
        SENTENCE,
        "They want to buy it this quarter.",
        "CI costs doubled; they can't keep paying two vendors.",
        "Security audit failed:\n- no SSO\n- no audit log\n- manual deploys",
        "The customer has asked for a demo before Friday.",
        "Renewal is due in March; details are in the command plan.",
        "Ils veulent acheter avant la fin du trimestre.",
    ],
)
def test_real_sentences_are_accepted(text):
    result = run(with_("opportunity", why_now=text, pain=text))
    assert result.ok, result.errors
    assert result.cleaned["why_now"] == text


def test_why_now_on_a_follow_up_is_optional_but_must_be_a_sentence_when_given():
    assert run(with_("follow_up", why_now="TBD")).errors.keys() == {"why_now"}
    assert run(with_("follow_up", why_now="  ")).ok
    assert run(with_("follow_up", why_now=SENTENCE)).cleaned["why_now"] == SENTENCE


@pytest.mark.parametrize(
    "text", ["@channel the customer is blocked on CI today!", "<!here> they need an SA today please"]
)
def test_mass_mentions_are_not_a_validation_error(text):
    result = run(with_("opportunity", pain=text))
    assert result.ok
    assert result.cleaned["pain"] == text


# --- dates ---


@pytest.mark.parametrize(
    ("when", "ok"),
    [
        (NOW + timedelta(days=2), True),
        (NOW, True),
        (NOW + timedelta(seconds=1), True),
        (NOW - timedelta(seconds=1), False),
        (NOW - timedelta(days=30), False),
    ],
)
@pytest.mark.parametrize("field", ["preferred_date_1", "preferred_date_2"])
def test_preferred_dates_must_not_be_in_the_past(field, when, ok):
    result = run(with_("opportunity", **{field: epoch(when)}))
    assert result.ok is ok
    if ok:
        assert result.cleaned[field] == when.replace(microsecond=0)
        assert result.cleaned[field].tzinfo is not None
        assert result.cleaned[field].utcoffset() == timedelta(0)
    else:
        assert list(result.errors) == [field]


def test_preferred_date_picked_in_another_zone_is_cleaned_as_the_same_instant():
    when = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    assert run(with_("follow_up", preferred_date_1=epoch(when))).cleaned["preferred_date_1"] == when


def test_preferred_date_that_is_not_a_timestamp_is_refused():
    assert run(with_("opportunity", preferred_date_1="tomorrow")).errors.keys() == {"preferred_date_1"}


@pytest.mark.parametrize(
    ("event_date", "expedite", "error"),
    [
        ("2026-12-10", [], None),
        ("2026-11-28", [], None),  # exactly 5 days from Monday 23rd
        # Sooner than the 5-day SLA is accepted (the SLA policy flags it as short notice), even today.
        ("2026-11-27", [], None),
        ("2026-11-23", [], None),
        ("2026-11-23", ["expedite"], None),  # today, expedited
        ("2026-11-25", ["expedite"], None),
        ("2026-11-22", ["expedite"], "That date has passed"),
        ("2025-01-01", [], "That date has passed"),
        ("23/11/2026", [], "date picker"),
        ("2026-02-30", [], "date picker"),
    ],
)
def test_an_event_sooner_than_its_sla_is_accepted_only_past_dates_are_refused(event_date, expedite, error):
    values = with_(
        "event", event_date=event_date, expedite=expedite, expedite_reason="Keynote speaker dropped out."
    )
    result = run(values)
    if error is None:
        assert result.ok, result.errors
        assert result.cleaned["event_date"] == date.fromisoformat(event_date)
    else:
        assert list(result.errors) == ["event_date"]
        assert error in result.errors["event_date"]


def test_event_dates_are_judged_in_the_queue_time_zone():
    late_monday_utc = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # already Tuesday in Auckland
    values = with_("event", event_date="2026-11-23", expedite=["expedite"], expedite_reason="Partner booth.")
    assert run(values, now=late_monday_utc).ok
    in_auckland = run(values, now=late_monday_utc, tz=ZoneInfo("Pacific/Auckland"))
    assert "That date has passed" in in_auckland.errors["event_date"]


# --- expedite ---


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_expedite_needs_a_reason(request_type):
    result = run(with_(request_type, expedite=["expedite"], expedite_reason="  "))
    assert list(result.errors) == ["expedite_reason"]
    reason = "The exec sponsor is only in town on Thursday."
    result = run(with_(request_type, expedite=["expedite"], expedite_reason=reason))
    assert result.ok, result.errors
    assert result.cleaned["expedite"] is True
    assert result.cleaned["expedite_reason"] == reason


@pytest.mark.parametrize("unticked", [[], None])
def test_a_reason_without_the_tick_is_ignored(unticked):
    result = run(with_("opportunity", expedite=unticked, expedite_reason="because"))
    assert result.ok
    assert result.cleaned["expedite"] is False
    assert "expedite_reason" not in result.cleaned


def test_errors_on_several_fields_are_reported_together():
    values = with_("opportunity", customer_name="", pain="TBD", hosting=None, expedite=["expedite"])
    assert set(run(values).errors) == {"customer_name", "pain", "hosting", "expedite_reason"}


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        validate(good("event"), now=NOW.replace(tzinfo=None), queue_keys=QUEUES)
