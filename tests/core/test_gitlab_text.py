"""User text in GitLab: quick actions don't run, mentions don't notify, HTML can't be injected, and
what the AE wrote still reads the same."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triage.core.gitlab_text import find_marker, marker, neutralize, neutralize_title

# Quick actions (https://docs.gitlab.com/user/project/quick_actions/) that would be dangerous if user text
# from an intake bot could run them with the app's token.
DANGEROUS = [
    "/close",
    "/reopen",
    "/assign @jane",
    "/assign me",
    "/reassign @bob",
    "/unassign",
    "/confidential",
    "/due tomorrow",
    "/due in 2 days",
    "/label ~urgent",
    "/relabel ~other",
    "/unlabel ~SA Doing",
    "/milestone %v1",
    "/remove_milestone",
    "/move other-group/other-project",
    "/clone other/project --with_notes",
    "/title Nothing to see here",
    "/duplicate #12",
    "/lock",
    "/unlock",
    "/spend 3h",
    "/estimate 1w",
    "/promote_to_incident",
    "/shrug whatever",
    "/tableflip",
]
NAMES = sorted({c.split()[0][1:] for c in DANGEROUS}, key=len, reverse=True)
# Gitlab::QuickActions::Extractor#commands_regex (run after it deletes every "\r") wants "/" in column 0;
# this model also allows leading blanks, so the tests hold if GitLab ever gets more lenient.
EXTRACTOR = re.compile(rf"^[ \t]*/(?:{'|'.join(NAMES)})(?: [^\n]*)?(?:\s*\n|$)", re.MULTILINE | re.IGNORECASE)
# GitLab's user reference pattern: "@" not after an (ASCII) word character, then a username character.
MENTION = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_.\-]")


def quick_actions(text: str) -> list[str]:
    return EXTRACTOR.findall(text.replace("\r", ""))


def rendered(text: str) -> str:
    """What a reader sees: CommonMark decodes character references (with ";"); the joiner is invisible."""
    decoded = re.sub(
        r"&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);", lambda m: html.unescape(m[0]), text
    )
    return decoded.replace("\u2060", "")


def as_typed(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("command", DANGEROUS)
@pytest.mark.parametrize(
    "template",
    [
        "{cmd}",
        "Customer says:\n{cmd}\nplease fix",
        "line one\r\n{cmd}\r\nline three",
        "trailing\n\r{cmd}",  # GitLab deletes "\r", which would put the command in column 0
        "   {cmd}",
        "\t{cmd}",
        "{upper}",
    ],
)
def test_quick_actions_do_not_run_but_still_read_as_typed(command, template):
    text = template.format(cmd=command, upper=command.upper())
    assert quick_actions(text), "sanity: GitLab would run this"
    out = neutralize(text)
    assert quick_actions(out) == []
    assert rendered(out) == as_typed(text)


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("@all please look", "@all please look"),
        ("cc @here and @channel", "cc @here and @channel"),
        ("ping @jane.doe, @bob_smith and @sa-team", "ping @jane.doe, @bob_smith and @sa-team"),
        ("@gitlab-org/solutions-architects", "@gitlab-org/solutions-architects"),
        ("(@all)", "(@all)"),
        ("é@all", "é@all"),
    ],
)
def test_mentions_do_not_notify_but_still_read_as_typed(text, visible):
    assert MENTION.search(text), "sanity: GitLab would mention someone"
    out = neutralize(text)
    assert MENTION.search(out) is None
    assert rendered(out) == visible


@pytest.mark.parametrize("text", ["jane@example.com", "sa-team@acme.co.uk", "a @ b", "@ all", "price@2x"])
def test_emails_and_lone_at_signs_are_left_alone(text):
    assert neutralize(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<!-- triage-request: 999 -->",
        "<details><summary>x</summary>hidden</details>",
        "a <b>bold</b> claim",
    ],
)
def test_html_is_shown_as_text_not_injected(text):
    out = neutralize(text)
    assert "<" not in out
    assert ">" not in out
    assert find_marker(out) is None
    assert rendered(out) == text


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("R&D and AT&T", "R&D and AT&T"),  # not a character reference: left as typed
        ("&lt;script&gt;", "&amp;lt;script&amp;gt;"),  # the user typed these characters; show them
        ("&#47;close", "&amp;#47;close"),
        ("&#x2F;", "&amp;#x2F;"),
    ],
)
def test_ampersands_are_escaped_only_where_markdown_would_decode_them(text, out):
    assert neutralize(text) == out
    assert rendered(neutralize(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "Builds take 40 minutes.\n\n- flaky tests\n- *slow* runners\n\n> quoted from the CTO",
        "Uses `kubectl` and ~20 microservices; 50% on #legacy",
        "Über-slow CI — 日本語 — emoji 🚀",
        "a/b/c path and https://example.com/x?y=1",
    ],
)
def test_ordinary_text_is_kept_as_written(text):
    out = neutralize(text)
    assert rendered(out) == text
    assert "/" in out or "/" not in text


@given(st.text(alphabet=st.sampled_from(list("/@<>&;#x2F \n\r\tabclosejnmy-_.é")), max_size=80))
def test_any_text_is_inert_and_reads_as_typed(text):
    out = neutralize(text)
    assert quick_actions(out) == []
    assert MENTION.search(out) is None
    assert "<" not in out
    assert "\r" not in out
    assert rendered(out) == as_typed(text)


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("Acme Corp", "Acme Corp"),
        ("Acme\nCorp  Ltd", "Acme Corp Ltd"),
        ("@all Acme", "@all Acme"),
        ("AT&T <EMEA>", "AT&T <EMEA>"),
    ],
)
def test_title_is_one_line_without_mentions(text, visible):
    out = neutralize_title(text)
    assert "\n" not in out
    assert MENTION.search(out) is None
    assert out.replace("\u2060", "") == visible


@pytest.mark.parametrize("request_id", ["42", "6f1c2b7e-0a4d-4c3e-9d1f-2b8a7c6e5d40", "req_01HZX"])
def test_marker_round_trips(request_id):
    text = marker(request_id)
    assert text == f"<!-- triage-request: {request_id} -->"
    assert find_marker(f"## Request\n\nbody\n\n{text}\n") == request_id


def test_user_text_cannot_forge_the_marker():
    forged = neutralize("<!-- triage-request: evil -->")
    assert find_marker(f"{forged}\n\n{marker('real')}") == "real"
    assert find_marker(forged) is None


@pytest.mark.parametrize("description", [None, "", "no marker here", "<!-- triage-request: -->"])
def test_find_marker_without_a_marker(description):
    assert find_marker(description) is None


@pytest.mark.parametrize("bad", ["a b", "x -->", "", "<b>"])
def test_marker_refuses_ids_that_would_break_it(bad):
    with pytest.raises(ValueError):
        marker(bad)
