"""The SLA summary in Block Kit: /sa-sla's answer and the leaders' part of the App Home. Pure.

Takes the summary as the summary module computes it (the /api/sla/summary JSON) and request lines
(objects with reference, customer_name, queue, left, late, at_risk, slack_url, gitlab_url...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blocks.text import SECTION_TEXT_MAX, clip, escape, link, mrkdwn, plain, user

_REASONS = {"capacity": "No SA had capacity", "no_context": "Request lacked context",
            "late_triage": "Seen too late", "other": "Other"}


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def hours(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}h"


def figures_line(f: Mapping[str, Any]) -> str:
    t = f["time_to_allocate_hours"]
    return (f"*{pct(f['attainment'])}* in SLA ({f['allocated_within_sla']}/{f['allocated']} allocated) · "
            f"{f['received']} received · median {hours(t['p50'])}, p90 {hours(t['p90'])} · "
            f"{f['open_unallocated']} waiting, {f['breached_open']} late · {f['declined']} declined")


def request_line(r: Any, queue_names: Mapping[str, str] | None = None) -> str:
    """One request: its reference linked to the card's thread, the customer, where it stands, the issue."""
    ref = link(r.slack_url, r.reference) if r.slack_url else escape(r.reference)
    issue = f" · {link(r.gitlab_url, 'issue')}" if r.gitlab_url else ""
    flag = ":red_circle: " if r.late else (":large_orange_circle: " if r.at_risk else "")
    queue = escape((queue_names or {}).get(r.queue, r.queue))
    expedite = " · expedited" if r.expedite else ""
    return f"{flag}*{ref}* {escape(clip(r.customer_name, 60))} · {queue}{expedite} · _{escape(r.left)}_{issue}"


def lines_section(title: str, lines: Sequence[Any], *, empty: str,
                  queue_names: Mapping[str, str] | None = None, limit: int = 15) -> list[dict[str, Any]]:
    """A titled list of requests in one or more sections (Slack's 3,000 characters each)."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": mrkdwn(f"*{escape(title)}*")}]
    if not lines:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(empty))]})
        return blocks
    text = ""
    for r in lines[:limit]:
        line = request_line(r, queue_names)
        if len(text) + len(line) + 1 > SECTION_TEXT_MAX:
            blocks.append({"type": "section", "text": mrkdwn(text)})
            text = ""
        text += ("\n" if text else "") + line
    if len(lines) > limit:
        text += f"\n_…and {len(lines) - limit} more_"
    blocks.append({"type": "section", "text": mrkdwn(clip(text, SECTION_TEXT_MAX))})
    return blocks


def summary_blocks(data: Mapping[str, Any], *, title: str = "SLA summary",
                   late: Sequence[Any] = (), queue_names: Mapping[str, str] | None = None,
                   dashboard_url: str | None = None) -> list[dict[str, Any]]:
    """The summary: totals, each queue, the most loaded SAs, breach reasons, then the late requests."""
    names = queue_names or {}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(title, 150)},
        {"type": "context", "elements": [mrkdwn(
            f"Requests received {escape(data['since'])} to {escape(data['until'])} "
            f"({escape(data.get('timezone', 'UTC'))}) · SLA clock: {escape(data['clock'])} "
            "· waiting and late counts are as of now")]},
        {"type": "section", "text": mrkdwn("*All queues*: " + figures_line(data["totals"]))},
    ]
    queue_lines = [f"*{escape(names.get(q['queue'], q.get('name') or q['queue']))}*: {figures_line(q)}"
                   for q in data["queues"]]
    if queue_lines:
        blocks.append({"type": "section", "text": mrkdwn(clip("\n".join(queue_lines), SECTION_TEXT_MAX))})
    sas = [s for s in data["sas"] if s["open"] or s["allocated"]][:8]
    if sas:
        load = "\n".join(f"{user(s['slack_user'])}: {s['open']} open · {s['allocated']} allocated in the period"
                         for s in sas)
        blocks.append({"type": "section", "text": mrkdwn("*Most loaded SAs*\n" + load)})
    reasons = [(k, v) for k, v in data["breach_reasons"].items() if v]
    unrecorded = data.get("breach_reasons_unrecorded") or 0
    if reasons or unrecorded:
        parts = [f"{escape(_REASONS.get(k, k))}: {v}" for k, v in reasons]
        if unrecorded:
            parts.append(f"not recorded yet: {unrecorded}")
        blocks.append({"type": "section", "text": mrkdwn("*Why SLAs were missed*: " + " · ".join(parts))})
    if late is not None:
        blocks += lines_section("Late and at risk now", late, empty="Nothing is late or at risk.",
                                queue_names=names, limit=10)
    if dashboard_url:
        blocks.append({"type": "context", "elements": [mrkdwn(link(dashboard_url, "Open the dashboard"))]})
    return blocks
