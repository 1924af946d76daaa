from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blocks.text import (
    ELLIPSIS,
    ZWJ,
    chunks,
    clip,
    date_token,
    escape,
    link,
    mrkdwn,
    plain,
    quote,
    user,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("A & B <c>", "A &amp; B &lt;c&gt;"),
        ("<!channel> hi", "&lt;!channel&gt; hi"),
        ("<!here>", "&lt;!here&gt;"),
        ("<!everyone>", "&lt;!everyone&gt;"),
        ("<@U123ABC>", "&lt;@U123ABC&gt;"),
        ("<!subteam^S123|@sas>", "&lt;!subteam^S123|@sas&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("&lt; already", "&amp;lt; already"),
    ],
)
def test_escape_follows_slack_rules(raw, escaped):
    assert escape(raw) == escaped


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@HERE", "ping @Channel now"])
def test_escape_defuses_bare_broadcasts(word):
    out = escape(word)
    assert "@" + ZWJ in out
    for name in ("channel", "here", "everyone"):
        assert f"@{name}" not in out.lower()


def test_escape_leaves_ordinary_at_signs():
    assert escape("mail me at ana@example.com or @ana") == "mail me at ana@example.com or @ana"


@given(st.text(), st.integers(min_value=1, max_value=200))
def test_clip_never_exceeds_limit(text, limit):
    out = clip(text, limit)
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
    else:
        assert out.endswith(ELLIPSIS)


@given(st.text(alphabet="ab&<>@ \n", max_size=300), st.integers(min_value=1, max_value=120))
def test_clip_of_escaped_text_never_leaves_half_an_entity(text, limit):
    out = clip(escape(text), limit)
    body = out.removesuffix(ELLIPSIS)
    # every '&' left starts a whole entity
    for i, ch in enumerate(body):
        if ch == "&":
            assert body[i:].startswith(("&amp;", "&lt;", "&gt;")), out


def test_clip_does_not_cut_a_mention_in_half():
    assert clip("owner <@U12345678>", 16) == "owner" + ELLIPSIS


def test_clip_rejects_a_zero_limit():
    with pytest.raises(ValueError):
        clip("x", 0)


def test_text_objects():
    assert plain("hi") == {"type": "plain_text", "text": "hi", "emoji": True}
    assert plain("x" * 100, 24)["text"] == "x" * 23 + ELLIPSIS
    assert mrkdwn("*b*") == {"type": "mrkdwn", "text": "*b*"}


def test_quote_escapes_and_prefixes_every_line():
    assert quote("one <!here>\ntwo & three\n\nfour") == "> one &lt;!here&gt;\n> two &amp; three\n> \n> four"


def test_quote_is_clipped_to_its_limit():
    out = quote("word " * 2000, 500)
    assert len(out) <= 500 and out.endswith(ELLIPSIS)
    assert len(quote("x" * 10_000, None)) == 10_002


@pytest.mark.parametrize(("uid", "shown"), [("U123ABC", "<@U123ABC>"), ("W0ENT1", "<@W0ENT1>")])
def test_user_mentions_only_real_ids(uid, shown):
    assert user(uid) == shown


@pytest.mark.parametrize("uid", ["!channel", "u123", "U12 3", "U1>", "<!here>", "C123", "U"])
def test_user_never_builds_a_token_from_other_text(uid):
    out = user(uid)
    assert "<" not in out and ">" not in out


def test_user_none():
    assert user(None) == "someone"


def test_date_token_uses_epoch_and_reader_time_zone():
    dt = datetime(2026, 11, 3, 14, 0, tzinfo=timezone(timedelta(hours=-5)))
    token = date_token(dt, "Nov 3, 2pm ET")
    assert token == f"<!date^{int(dt.timestamp())}^{{date_short_pretty}} at {{time}}|Nov 3, 2pm ET>"


def test_date_token_naive_is_utc_and_fallback_is_safe():
    naive = datetime(2026, 1, 2, 3, 4)
    token = date_token(naive)
    assert f"^{int(naive.replace(tzinfo=UTC).timestamp())}^" in token
    assert token.endswith("|2026-01-02 03:04 UTC>")
    sneaky = date_token(naive, "a|b> <!here>")
    assert sneaky.endswith("|a/b&gt; &lt;!here&gt;>")


def test_link_escapes_label_and_url():
    assert link("https://x.test/a?b=1&c=<2>|", "<!here> | x") == (
        "<https://x.test/a?b=1&amp;c=%3C2%3E%7C|&lt;!here&gt; / x>"
    )


@given(st.text(alphabet="ab \n", max_size=2000), st.integers(min_value=5, max_value=300))
def test_chunks_respect_the_limit_and_keep_the_words(text, limit):
    parts = list(chunks(text, limit))
    assert all(0 < len(p) <= limit for p in parts)
    assert all(p.strip() for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())  # nothing but whitespace is lost


def test_chunks_cut_at_line_breaks():
    assert list(chunks("aaaa\nbbbb", 5)) == ["aaaa", "bbbb"]
    assert list(chunks("x" * 12, 5)) == ["xxxxx", "xxxxx", "xx"]
    assert list(chunks("  \n ", 5)) == []
