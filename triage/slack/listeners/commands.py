"""Slash commands: /sa-sla [queue] [7d|30d|quarter], the SLA summary for leaders."""

from __future__ import annotations

from datetime import UTC, datetime

from slack_bolt.async_app import AsyncApp

from blocks.ids import SlashCommand
from blocks.summary import summary_blocks
from blocks.text import escape
from triage.services import Services
from triage.services import summary as sm
from triage.slack.listeners import bind, run

REFUSAL = "SLA summaries are for the SA leaders named in the app's config."
DEFAULT_PERIOD = "30d"


def usage(services: Services) -> str:
    queues = ", ".join(f"`{k}`" for k in services.config.queue_keys) or "none configured"
    return f"Use `/sa-sla [queue] [7d|30d|quarter]`, e.g. `/sa-sla 7d`. Queues: {queues}."


def parse_args(services: Services, text: str) -> tuple[str | None, str]:
    """(queue key or None for all, period form); ValueError says what was not understood."""
    queue, period = None, None
    for word in (text or "").split():
        token = word.strip().lower()
        if token in sm.PERIOD_FORMS and period is None:
            period = token
        elif services.config.queue(token) is not None and queue is None:
            queue = token
        else:
            raise ValueError(f"I didn't understand `{escape(word[:40])}`. {usage(services)}")
    return queue, period or DEFAULT_PERIOD


def summary_answer(services: Services, queue: str | None, form: str, now: datetime) -> dict:
    period = sm.period_named(form, services.config, now)
    queues = [queue] if queue else None
    data = sm.summary(services.engine, services.config, period, now=now, queues=queues)
    late = sm.late_and_at_risk(services.engine, services.config, now=now, queues=queues, limit=10)
    names = {q.key: q.name for q in services.config.queues}
    title = f"SLA summary: {names[queue] if queue else 'all queues'}, {form if form != 'quarter' else 'this quarter'}"
    t = data["totals"]
    text = (f"{title}: {sm_pct(t['attainment'])} allocated within SLA, {t['received']} received, "
            f"{t['breached_open']} late and waiting")
    return {"text": text, "blocks": summary_blocks(data, title=title, late=late, queue_names=names)}


def sm_pct(v: float | None) -> str:
    return "no allocations" if v is None else f"{v * 100:.0f}%"


async def sa_sla(ack, command, *, services: Services):
    if command.get("user_id") not in services.config.slack.leaders:
        await ack(response_type="ephemeral", text=REFUSAL)
        return
    try:
        queue, form = parse_args(services, command.get("text", ""))
    except ValueError as e:
        await ack(response_type="ephemeral", text=str(e))
        return
    answer = await run(summary_answer, services, queue, form, datetime.now(UTC))
    await ack(response_type="ephemeral", **answer)


def register(app: AsyncApp, services: Services) -> None:
    app.command(SlashCommand.SA_SLA.value)(bind(sa_sla, services=services))
