"""The App Home tab: what each person needs to see, by role. Pure.

Leaders: the summary for the queues and the late and at-risk requests. SAs: their open claims and
their queues' unclaimed requests with the time left. AEs (everyone who filed something): their own
requests and where they stand. A person with several roles sees each part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blocks.summary import lines_section, summary_blocks
from blocks.text import MODAL_BLOCKS_MAX, mrkdwn, plain


def home_view(*, summary: Mapping[str, Any] | None = None, late: Sequence[Any] = (),
              claims: Sequence[Any] | None = None, unclaimed: Sequence[Any] | None = None,
              mine: Sequence[Any] = (), queue_names: Mapping[str, str] | None = None,
              dashboard_url: str | None = None, updated: str = "") -> dict[str, Any]:
    names = queue_names or {}
    blocks: list[dict[str, Any]] = []
    if summary is not None:
        blocks += summary_blocks(summary, title="SLA summary (last 30 days)", late=late, queue_names=names,
                                 dashboard_url=dashboard_url)
        blocks.append({"type": "divider"})
    if claims is not None:
        blocks.append({"type": "header", "text": plain("Your work", 150)})
        blocks += lines_section("Your open claims", claims, empty="You hold no open requests.",
                                queue_names=names)
        blocks += lines_section("Unclaimed in your queues", unclaimed or (), queue_names=names,
                                empty="Nothing is waiting for an SA in your queues.")
        blocks.append({"type": "divider"})
    blocks.append({"type": "header", "text": plain("Your requests", 150)})
    blocks += lines_section("Requests you filed", mine, queue_names=names,
                            empty="You have not filed a request yet. Use the “Request an SA” shortcut.")
    if updated:
        blocks.append({"type": "context", "elements": [mrkdwn(f"Updated {updated}")]})
    return {"type": "home", "blocks": blocks[:MODAL_BLOCKS_MAX]}
