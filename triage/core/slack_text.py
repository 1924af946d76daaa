"""Escaping people's words for Slack mrkdwn. Pure; shared by blocks/ and the use cases that compose
thread replies, so every path defuses mentions the same way."""

from __future__ import annotations

import re

ZWJ = "\u200d"

# Slack turns bare @channel/@here/@everyone into mentions when a message is sent with parse=full or
# link_names=1, and "certain mentions" are parsed in mrkdwn objects that are not verbatim (Slack docs,
# "Composition objects: text object", `verbatim`). A zero-width joiner after the '@' keeps the text
# readable and unparseable.
_BARE_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone))", re.IGNORECASE)


def escape(text: str) -> str:
    """Escape text for mrkdwn, so whatever a person typed shows as typed and pings nobody.

    Slack's documented escaping is `&` -> `&amp;`, `<` -> `&lt;`, `>` -> `&gt;` ("Formatting text for
    app surfaces: escaping text"); that alone neutralises `<!channel>`, `<!here>`, `<!everyone>`,
    `<@U...>`, `<!subteam^...>` and `<url|label>` links. Bare `@here`-style words are defused too.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BARE_BROADCAST.sub("@" + ZWJ, text)


def quote_lines(text: str) -> str:
    """Escaped, as a mrkdwn blockquote ("> " before every line)."""
    return "\n".join("> " + line for line in escape(text).splitlines())


_LINK_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:[/?#][A-Za-z0-9\-._~%!$&'()*+,;=:@/?#]*)?")


def slack_link(url: str, label: str) -> str | None:
    """A mrkdwn link `<url|label>`, or None unless the URL is a plain http(s) URL.

    Slack reads `<`, `>` and `|` as the link's own syntax and `<!channel` as a broadcast, so a URL with
    any of them, or with blanks, could end the link early and smuggle in markup; only URLs made of
    ordinary URL characters are linked. `&` is escaped as Slack asks; the label is escaped.
    """
    if not _LINK_URL.fullmatch(url):
        return None
    return f"<{url.replace('&', '&amp;')}|{escape(label)}>"
