"""Make user text safe to put in a GitLab issue description or note, and the request marker.

GitLab acts on some of what it stores (https://docs.gitlab.com/user/project/quick_actions/):
- quick actions: `Gitlab::QuickActions::Extractor` runs `^\\/(?<cmd>close|move|...)` over the raw
  description/note *before* Markdown rendering, after deleting every "\\r", and executes what matches with
  the app token's rights (`/close`, `/move group/project`, `/assign @x`, `/confidential`, ...);
- mentions: `@name`, `@group/sub` and `@all` notify people (the title is mentionable too);
- raw HTML: `<!-- ... -->` would let a user forge our hidden marker;
- block structure: an unclosed code fence would turn everything after it into code.

Everything else (Markdown, line breaks, punctuation) is kept exactly as the user wrote it.
"""

from __future__ import annotations

import re

# Why "&#47;": the quick-action extractor matches the raw text, where "&#47;close" does not start with
# "/", so nothing runs; the Markdown renderer then decodes the character reference, so readers still
# see "/close". A zero-width space would also stop the match but is invisible and survives copy-paste,
# and wrapping in backticks changes how the line looks.
_SLASH = "&#47;"

# Why U+2060 WORD JOINER after "@": GitLab finds mentions in the *rendered* text, so an HTML entity or a
# backslash escape would decode back to "@all" and still notify. The user reference pattern is
# "(?<!\w)@" followed by a username character; an invisible joiner between the two breaks the match
# while the text still reads "@all". GitLab's \w is ASCII-only (Ruby), so "é@x" is still a mention but
# "jane@example.com" is not — we mirror that, leaving e-mail addresses intact.
_MENTION_BREAK = "\u2060"
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@(?=[A-Za-z0-9_.\-])")

# "&" only needs escaping when it would start a character reference that changes what readers see
# (e.g. a user typing "&lt;" meant those four characters); "R&D" and "AT&T" are left alone.
_ENTITY_LIKE = re.compile(r"&(?=#[0-9]+;|#[xX][0-9A-Fa-f]+;|[A-Za-z][A-Za-z0-9]*;)")
_LEADING_SLASH = re.compile(r"^([ \t]*)/", re.MULTILINE)
# Why: a line of ``` or ~~~ opens a fenced code block (CommonMark 4.5) that runs to the end of the document
# when nothing closes it, and GitLab's $$ opens a display-math block the same way; either would swallow
# the template's own sections, footer and marker. A backslash before the first character makes the line
# ordinary text (CommonMark 2.4: backslash escapes), which still reads as the user typed it.
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,}|\$\$)", re.MULTILINE)

_MARKER_ID = r"[A-Za-z0-9_.:\-]+"
_MARKER = re.compile(rf"<!-- triage-request: ({_MARKER_ID}) -->")


def _break_mentions(text: str) -> str:
    return _MENTION.sub("@" + _MENTION_BREAK, text)


def neutralize(text: str) -> str:
    """User text made inert for a GitLab description or note: no quick actions, mentions or HTML."""
    # GitLab deletes "\r" before looking for quick actions, so "x\r/close" would become "x/close" and
    # "\r\n\r/close" a command line; turn every line break into "\n" first.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ENTITY_LIKE.sub("&amp;", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    text = _break_mentions(text)
    text = _FENCE.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    # Leading blanks are kept; GitLab needs "/" in column 0, but this also covers any future leniency.
    return _LEADING_SLASH.sub(lambda m: m.group(1) + _SLASH, text)


def neutralize_title(text: str) -> str:
    """User text for an issue title: one line, mentions broken.

    GitLab never runs quick actions in titles and sanitises them when it shows them, while an escaped
    "&lt;" would show up literally in e-mails and API clients; but a title is mentionable, so mentions
    are broken here too.
    """
    return _break_mentions(" ".join(text.split()))


def marker(request_id: str) -> str:
    """The hidden marker that ties a GitLab issue to its request."""
    if not re.fullmatch(_MARKER_ID, str(request_id)):
        raise ValueError(f"request id {request_id!r} can't go in a marker")
    return f"<!-- triage-request: {request_id} -->"


def find_marker(description: str | None) -> str | None:
    """The request id in a description's marker, or None.

    The last marker wins: ours is appended at the end, and user text can't contain one (neutralize
    escapes "<"), so an earlier one could only come from someone editing the issue by hand.
    """
    found = _MARKER.findall(description or "")
    return found[-1] if found else None


def quote(text: str) -> str:
    """Neutralised, as a Markdown blockquote ("> " before every line)."""
    return "\n".join("> " + line for line in neutralize(text).splitlines())
