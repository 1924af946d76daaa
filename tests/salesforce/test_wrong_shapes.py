"""Salesforce answering with the wrong shape: what the AE, the worker and the admin see stays sane.

The fake org answers a route with whatever the test gives it (``answer_with``): a token without
``access_token``, an ``instance_url`` that is no URL, a query whose ``records`` are missing or whose
``StageName`` is a number, ``IsClosed`` a string, ``Account`` a list, huge strings, NUL bytes, JSON nested
100,000 deep, bodies that are not JSON at all, error lists of the wrong shape. Whatever it sends:

* the modal's submission is acknowledged (200, never a 500 or a traceback) and the request is stored
  "not verified"; only an answer the app can read, saying the opportunity is closed, too early or missing,
  gives the inline opportunity error;
* the worker's Salesforce deliveries retry with the reason (never "unexpected error"), and deliver once
  Salesforce answers properly again;
* ``triage check`` says what is wrong in one readable line.
"""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from tests.conftest import AE, CONFIG_TOML, SA1, make_settings, post_slack_payload, submission_payload
from tests.flows.test_intake import GOOD, open_modal
from tests.salesforce.conftest import BLANK_OPP, FIELDS, SALESFORCE_TOML, seed
from triage.db import session_scope
from triage.models import OutboxEntry, Request
from triage.ops import check

FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- shapes -------------------------------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000  # valid JSON, deeper than any parser's recursion limit
NOT_JSON = st.sampled_from([b"", b"<html><body>502 Bad Gateway</body></html>", b'{"records": [', b"\xff\xfe\x00",
                            b"null", b"\x00" * 64, DEEP])
JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
HUGE = st.sampled_from(["x" * 300_000, "Closed Lost" + "\x00" * 10, "Discovery\x00", "A" * 256])


def _record(stage: str, closed: bool) -> dict[str, Any]:
    return {"attributes": {"type": "Opportunity"},
            "Id": "0065g00000AbCdEAAV", "Name": "Acme Corp - New Business", "StageName": stage, "IsClosed": closed,
            "IsWon": False, "Account": {"attributes": {"type": "Account"}, "Name": "Acme Corp"},
            **{api: None for api in FIELDS.values()}}


# What the app may make of a readable answer: "open" (stored verified), or the inline error's words.
READABLE = {
    "open": _record("Technical Evaluation", False),
    "is at stage Prospecting": _record("Prospecting", False),
    "is Closed Lost": _record("Closed Lost", True),
    "was not found": None,
}


@st.composite
def query_answers(draw) -> tuple[int, Any, str | None]:
    """(status, body, expected): expected is READABLE's key, or None when the answer can't be read."""
    outcome = draw(st.sampled_from(sorted(READABLE)))
    rec = copy.deepcopy(READABLE[outcome])
    result: Any = {"totalSize": 0 if rec is None else 1, "done": True, "records": [] if rec is None else [rec]}
    if rec is not None and draw(st.booleans()):  # harmless: what a real org may also send
        kind = draw(st.sampled_from(["no account", "extra field", "IsWon null", "long text"]))
        if kind == "no account":
            rec["Account"] = None
        elif kind == "extra field":
            rec["Unexpected__c"] = draw(JUNK)
        elif kind == "IsWon null":
            rec["IsWon"] = None
        else:
            rec[FIELDS["why_now"]] = "A customer said: " + "x" * 30_000
        return 200, result, outcome
    broken = draw(st.sampled_from(["body", "result", "records", "record", "field", "account", "text"]))
    if broken == "body":
        return 200, draw(NOT_JSON), None
    if broken == "result":
        return 200, draw(st.one_of(st.none(), st.integers(), st.text(max_size=10), st.just([result]))), None
    if broken == "records":
        if draw(st.booleans()):
            del result["records"]
        else:
            result["records"] = draw(st.one_of(st.none(), st.text(max_size=5), st.integers(), st.just({"0": rec}),
                                               st.just(["0065g00000AbCdEAAV"]), st.just([None])))
        return 200, result, None
    if rec is None:
        return 200, {"totalSize": 1, "done": True, "records": [draw(JUNK)]}, None
    if broken == "record":
        del rec[draw(st.sampled_from(["StageName", "IsClosed"]))]
        return 200, result, None
    if broken == "field":
        name = draw(st.sampled_from(["StageName", "IsClosed", "Name", "Id", FIELDS["pain"]]))
        value = draw(JUNK.filter(lambda v: not isinstance(v, str if name != "IsClosed" else bool)
                                 and not (v is None and name in ("Name", FIELDS["pain"]))))
        rec[name] = value
        return 200, result, None
    if broken == "account":
        rec["Account"] = draw(st.one_of(st.just([{"Name": "Acme Corp"}]), st.text(max_size=5), st.integers(),
                                        st.just({"Name": 42}), st.just({"Name": ["Acme"]})))
        return 200, result, None
    rec[draw(st.sampled_from(["StageName", "Name"]))] = draw(HUGE)  # longer than the field holds, or a NUL
    return 200, result, None


GOOD_TOKEN = {"access_token": "00D5g000004ABCD!AQ0000000001.fake", "token_type": "Bearer", "scope": "api",
              "id": "https://127.0.0.1/id/00D5g000004ABCDEAA/0055g000000INTEGAAA", "issued_at": "1700000000000"}
BAD_INSTANCE = st.sampled_from(["not a url", "ftp://127.0.0.1", "https://", "https://[::1", "http://127.0.0.1",
                                "https://127.0.0.1:1", "https://exa mple.com", "javascript:alert(1)",
                                "https://127.0.0.1\x00.evil", "https://" + "a" * 70_000, 42, None, ["https://x"]])


@st.composite
def token_answers(draw) -> tuple[int, Any]:
    kind = draw(st.sampled_from(["no access_token", "no instance_url", "bad instance_url", "bad access_token",
                                 "not an object", "not JSON", "error of the wrong shape"]))
    body: Any = {**GOOD_TOKEN, "instance_url": "https://127.0.0.1:1"}
    if kind == "no access_token":
        del body["access_token"]
    elif kind == "no instance_url":
        del body["instance_url"]
    elif kind == "bad instance_url":
        body["instance_url"] = draw(BAD_INSTANCE)
    elif kind == "bad access_token":
        body["access_token"] = draw(st.one_of(JUNK.filter(lambda v: not isinstance(v, str)),
                                              st.just("tok\r\nX-Injected: 1"), st.just("x" * 100_000)))
    elif kind == "not an object":
        body = draw(st.one_of(st.just([body]), st.text(max_size=10), st.integers(), st.none()))
    elif kind == "not JSON":
        return draw(st.sampled_from([200, 400, 500])), draw(NOT_JSON)
    else:
        return draw(st.sampled_from([400, 401])), draw(st.one_of(
            st.just({"error": ["invalid_client"], "error_description": {"a": 1}}),
            st.just({"error": "invalid_client", "error_description": "x\n" * 5000}), JUNK))
    return 200, body


@st.composite
def error_answers(draw) -> tuple[int, Any]:
    """A refusal (4xx/5xx) whose body is not Salesforce's documented error list."""
    status = draw(st.sampled_from([400, 403, 404, 500, 502]))
    body = draw(st.one_of(
        NOT_JSON,
        st.just([{"errorCode": ["FIELD_CUSTOM_VALIDATION_EXCEPTION"], "message": "nope"}]),
        st.just([{"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": {"text": 1}, "fields": [1, None]}]),
        st.just([{"errorCode": {"a": 1}, "fields": "Why_Now__c"}]),
        st.just({"errorCode": 42, "message": "x\n" * 10_000}),
        st.just(["INVALID_FIELD", 7, None]),
        JUNK,
    ))
    return status, body


# -- the modal --------------------------------------------------------------------------------------

_ids = itertools.count(1)


def _stored(settings_, opportunity_15: str) -> Request | None:
    from triage.db import make_engine

    engine = make_engine(settings_.database_url)
    try:
        with session_scope(engine) as s:
            return s.exec(select(Request).where(Request.opportunity_id.startswith(opportunity_15))).first()
    finally:
        engine.dispose()


@pytest.fixture
def held_view(sf_client, fake_slack, fake_salesforce):
    return open_modal(sf_client, fake_slack)


def _submit(client, view, opportunity: str):
    n = next(_ids)
    return post_slack_payload(client, submission_payload(view, {**GOOD, "opportunity": opportunity},
                                                         view_id=f"VFUZZ{n:06d}"))


def _assert_acknowledged(r) -> dict[str, Any]:
    assert r.status_code == 200, r.text[:300]
    assert "Traceback" not in r.text
    body = r.json()
    assert body["response_action"] in ("update", "errors"), body
    return body


@FUZZ
@given(answer=query_answers())
def test_a_submission_is_acknowledged_and_stored_whatever_the_query_answers(
        answer, sf_client, held_view, fake_salesforce, sf_settings):
    status, body, expected = answer
    opportunity = f"0065g{next(_ids):010d}"
    fake_salesforce.answer_with("query", body, status=status)
    try:
        r = _submit(sf_client, held_view, opportunity)
    finally:
        fake_salesforce.clear_answers()
    ack = _assert_acknowledged(r)
    stored = _stored(sf_settings, opportunity)
    if expected is None:
        assert ack["response_action"] == "update", ack
        assert stored is not None and stored.salesforce_verified is False
    elif expected == "open":
        assert ack["response_action"] == "update", ack
        assert stored is not None and stored.salesforce_verified is True
    else:
        assert ack == {"response_action": "errors",
                       "errors": {"opportunity": ack["errors"]["opportunity"]}}, ack
        assert expected in ack["errors"]["opportunity"] and len(ack["errors"]["opportunity"]) < 300
        assert stored is None


@FUZZ
@given(answer=token_answers())
def test_a_submission_is_acknowledged_and_stored_not_verified_whatever_the_login_answers(
        answer, sf_client, held_view, fake_salesforce, sf_settings):
    status, body = answer
    opportunity = f"0065g{next(_ids):010d}"
    fake_salesforce.expire_tokens()  # the app must log in again, and meets the answer
    fake_salesforce.answer_with("token", body, status=status)
    try:
        r = _submit(sf_client, held_view, opportunity)
    finally:
        fake_salesforce.clear_answers()
    ack = _assert_acknowledged(r)
    assert ack["response_action"] == "update", ack
    stored = _stored(sf_settings, opportunity)
    assert stored is not None and stored.salesforce_verified is False


# -- the worker -------------------------------------------------------------------------------------

CLEANED = {
    "request_type": "opportunity", "queue": "amer-east", "customer_name": "Umbrella Health",
    "opportunity": BLANK_OPP, "command_plan_url": "https://docs.example.com/cp/umbrella",
    "why_now": "Their audit is due in April and the current tooling cannot produce the evidence.",
    "pain": "Every release needs a manual change board because nothing is traceable.",
    "champion": "Riley Chen, Director of Platform", "asks": ["demo"], "hosting": "saas",
}


def _salesforce_entries(services) -> list[OutboxEntry]:
    from triage.services.crm import SALESFORCE_KINDS

    with session_scope(services.engine) as s:
        return list(s.exec(select(OutboxEntry).where(OutboxEntry.kind.in_([k.value for k in SALESFORCE_KINDS]))))


@FUZZ
@given(route=st.sampled_from(["token", "query", "get", "patch"]),
       answer=st.one_of(error_answers(), st.tuples(st.just(200), NOT_JSON),
                        st.tuples(st.just(200), JUNK), query_answers().map(lambda a: a[:2])))
def test_salesforce_deliveries_retry_with_a_reason_and_land_once_it_answers_properly(
        route, answer, sf_services, fake_salesforce):
    from triage.services.crm import SALESFORCE_KINDS
    from triage.worker import build_notifier

    notifier = build_notifier(sf_services.settings)  # the SA's email, to find them in Salesforce, is Slack's
    status, body = answer
    fake_salesforce.reset()
    seed(fake_salesforce)
    with session_scope(sf_services.engine) as s:
        for e in s.exec(select(OutboxEntry)):
            s.delete(e)
    request = sf_services.submit(submission_key=f"VW{next(_ids)}", requester=AE, cleaned=CLEANED,
                                 salesforce_verified=False)
    sf_services.claim(request.request_id, SA1)  # the Primary SA is to be set too
    fake_salesforce.expire_tokens()
    fake_salesforce.answer_with(route, body, status=status)
    now = datetime.now(UTC) + timedelta(days=next(_ids))
    try:
        claimed, delivered, retried = sf_services.deliver_salesforce_due(now=now, notifier=notifier)
    finally:
        fake_salesforce.clear_answers()
    assert claimed == delivered + retried
    for entry in _salesforce_entries(sf_services):
        assert not (entry.last_error or "").startswith("unexpected error"), entry.last_error
        assert len(entry.last_error or "") <= 2000
    # Salesforce answers properly again: everything lands, once.
    for _ in range(3):
        sf_services.deliver_salesforce_due(now=now + timedelta(days=1), notifier=notifier)
        now += timedelta(days=1)
    assert all(e.done_at is not None for e in _salesforce_entries(sf_services) if e.request_id == request.request_id
               and e.kind in SALESFORCE_KINDS)
    assert fake_salesforce.opportunity(BLANK_OPP)["Why_Now__c"] == CLEANED["why_now"]


# -- triage check -----------------------------------------------------------------------------------

def _salesforce_lines(tmp_path, fake) -> list[str]:
    path = tmp_path / "triage.toml"
    path.write_text(CONFIG_TOML + SALESFORCE_TOML)
    s = make_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", TRIAGE_CONFIG=str(path),
                      SALESFORCE_CLIENT_ID=fake.client_id, SALESFORCE_CLIENT_SECRET=fake.client_secret,
                      SALESFORCE_LOGIN_URL=fake.login_url, SALESFORCE_CA_BUNDLE=fake.ca_file)
    out: list[str] = []
    check(s, out=out.append)
    return [line for line in out if line[4:].lstrip().startswith("salesforce")]


@st.composite
def describe_answers(draw) -> tuple[int, Any]:
    good_field = {"name": "Why_Now__c", "type": "textarea", "updateable": True, "picklistValues": [],
                  "referenceTo": []}
    kind = draw(st.sampled_from(["not JSON", "junk", "fields junk", "field junk", "refused"]))
    if kind == "not JSON":
        return 200, draw(NOT_JSON)
    if kind == "junk":
        return 200, draw(st.one_of(JUNK, st.just([{"fields": [good_field]}])))
    if kind == "fields junk":
        return 200, {"name": "Opportunity", "fields": draw(st.one_of(JUNK, st.just(["Why_Now__c"]), st.just([None])))}
    if kind == "field junk":
        f = dict(good_field)
        key = draw(st.sampled_from(["name", "type", "updateable", "picklistValues", "referenceTo"]))
        f[key] = draw(st.one_of(JUNK, st.just([{"value": 1}]), st.just(["User"]), st.just("x" * 100_000)))
        if draw(st.booleans()):
            del f[key]
        return 200, {"name": "Opportunity", "fields": [f]}
    return draw(error_answers())


@settings(FUZZ, max_examples=25)
@given(route=st.sampled_from(["token", "describe"]), data=st.data())
def test_check_says_what_is_wrong_in_one_readable_line(route, data, tmp_path, fake_salesforce):
    status, body = data.draw(token_answers() if route == "token" else describe_answers())
    fake_salesforce.answer_with(route, body, status=status)
    try:
        lines = _salesforce_lines(tmp_path, fake_salesforce)
    finally:
        fake_salesforce.clear_answers()
    assert lines, "no salesforce line"
    for line in lines:
        assert "\n" not in line and "\x00" not in line and len(line) < 600, line[:600]
        assert "Traceback" not in line
    if route == "token":
        assert len(lines) == 1 and lines[0].startswith("FAIL salesforce: login at"), lines
