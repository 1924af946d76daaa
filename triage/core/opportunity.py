"""Opportunity rules: may an SA request start on it, what to write back, and how SA work ended.

An SA request comes after a qualified opportunity is created: the opportunity must exist, be open (not
``IsClosed``) and be at or past the stage the org calls qualified. The SA's work ends in a technical outcome;
the honest technical win rate counts the evaluations the team chose not to compete in:

    honest = wins / (wins + losses + withdrew)
    excluding_withdrawals = wins / (wins + losses)      (shown beside it, so the gap is visible)

``not_applicable`` (a questionnaire, an event) is in neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "OUTCOME_LABELS",
    "OpportunityRecord",
    "Outcome",
    "WinRate",
    "check_opportunity",
    "missing_values",
    "technical_line",
    "validate_outcome",
    "win_rate",
]


@dataclass(frozen=True)
class OpportunityRecord:
    """What the app reads of an opportunity; ``values`` are the Command Plan fields, by request field name."""

    id: str
    name: str
    stage: str
    is_closed: bool
    is_won: bool = False
    account_name: str | None = None
    values: Mapping[str, str | None] = field(default_factory=dict)


def check_opportunity(record: OpportunityRecord | None, typed_id: str, *, stages: Sequence[str] = (),
                      min_stage: str | None = None) -> str | None:
    """None when an SA request may start on it, else the message for the AE (naming what is wrong).

    A stage the configured order does not list is accepted (it is open); ``triage check`` reports a
    configured order that does not match the org's picklist.
    """
    if record is None:
        return (f"Opportunity {typed_id} was not found in Salesforce (check the id, or ask an admin whether the "
                "integration user can see it)")
    if record.is_closed:
        return f"Opportunity {typed_id} is {record.stage}"
    order = list(stages)
    if min_stage in order and record.stage in order and order.index(record.stage) < order.index(min_stage):
        return f"Opportunity {typed_id} is at stage {record.stage}; SA requests start at {min_stage}"
    return None


def missing_values(record: OpportunityRecord, entered: Mapping[str, str | None]) -> dict[str, str]:
    """What the AE wrote that Salesforce lacks: request field -> text, only where Salesforce is blank."""
    out: dict[str, str] = {}
    for key, current in record.values.items():
        text = (entered.get(key) or "").strip()
        if text and not (current or "").strip():
            out[key] = text
    return out


class Outcome(StrEnum):
    TECHNICAL_WIN = "technical_win"
    TECHNICAL_LOSS = "technical_loss"
    WITHDREW = "withdrew"
    NOT_APPLICABLE = "not_applicable"


OUTCOME_LABELS = {
    Outcome.TECHNICAL_WIN: "Technical win",
    Outcome.TECHNICAL_LOSS: "Technical loss",
    Outcome.WITHDREW: "Withdrew (we chose not to compete)",
    Outcome.NOT_APPLICABLE: "Not applicable (e.g. a questionnaire)",
}

EVIDENCE_MAX = 3000
_EVIDENCE_MIN_WORDS = 4


def validate_outcome(outcome: str | None, evidence: str | None) -> dict[str, str]:
    """{field: message} for the outcome modal; evidence ("who validated what") is needed but for not_applicable.

    A technical win is an affirmative, documented endorsement: the absence of a no is not a yes, so the
    evidence names the stakeholders and the success criteria they confirmed.
    """
    errors: dict[str, str] = {}
    if outcome not in set(Outcome):
        errors["outcome"] = "Choose how the technical evaluation ended."
        return errors
    text = (evidence or "").strip()
    if len(text) > EVIDENCE_MAX:
        errors["evidence"] = f"Keep it under {EVIDENCE_MAX} characters (a few lines)."
    elif outcome != Outcome.NOT_APPLICABLE and len(text.split()) < _EVIDENCE_MIN_WORDS:
        errors["evidence"] = {
            Outcome.TECHNICAL_WIN: "Say who validated what: the stakeholders and the success criteria they "
                                   "confirmed.",
            Outcome.TECHNICAL_LOSS: "Say who decided against us and on which criteria.",
            Outcome.WITHDREW: "Say why we chose not to compete, and whether we realistically could have.",
        }[Outcome(outcome)]
    return errors


@dataclass(frozen=True)
class WinRate:
    wins: int = 0
    losses: int = 0
    withdrew: int = 0
    not_applicable: int = 0

    @property
    def decided(self) -> int:
        return self.wins + self.losses + self.withdrew

    @property
    def honest(self) -> float | None:
        """wins / (wins + losses + withdrew); None when nothing was decided."""
        return self.wins / self.decided if self.decided else None

    @property
    def excluding_withdrawals(self) -> float | None:
        """wins / (wins + losses): the flattering rate, shown beside the honest one."""
        return self.wins / (self.wins + self.losses) if self.wins + self.losses else None

    def as_dict(self) -> dict[str, int | float | None]:
        return {"technical_wins": self.wins, "technical_losses": self.losses, "withdrew": self.withdrew,
                "not_applicable": self.not_applicable, "win_rate": self.honest,
                "win_rate_excluding_withdrawals": self.excluding_withdrawals}


def win_rate(outcomes: Iterable[str]) -> WinRate:
    counts = {o: 0 for o in Outcome}
    for o in outcomes:
        if o in counts:
            counts[Outcome(o)] += 1
    return WinRate(wins=counts[Outcome.TECHNICAL_WIN], losses=counts[Outcome.TECHNICAL_LOSS],
                   withdrew=counts[Outcome.WITHDREW], not_applicable=counts[Outcome.NOT_APPLICABLE])


def _pct(v: float | None) -> str:
    return f"{v * 100:.0f}%"


def _days(v: float | None) -> str:
    return f"{v:.1f} day" + ("" if v == 1 else "s")


def technical_line(f: Mapping[str, Any] | None) -> str | None:
    """The technical win figures in a leader's words, both rates side by side so the gap shows, e.g.
    "Technical win rate 50% (2 of 4, counting 1 withdrawal) · 67% leaving withdrawals out · median 3.0 days
    from request to outcome". None when nothing in the period has been done yet. Plain text (numbers only)."""
    if not f or not (f.get("technical_wins", 0) + f.get("technical_losses", 0) + f.get("withdrew", 0)
                     + f.get("not_applicable", 0) + f.get("done", 0)):
        return None
    wins, losses, withdrew = f["technical_wins"], f["technical_losses"], f["withdrew"]
    decided = wins + losses + withdrew
    if decided:
        w = "withdrawal" if withdrew == 1 else "withdrawals"
        text = f"Technical win rate {_pct(f['win_rate'])} ({wins} of {decided}, counting {withdrew} {w})"
        text += (f" · {_pct(f['win_rate_excluding_withdrawals'])} leaving withdrawals out"
                 if wins + losses else " · none won or lost outright")
    else:
        text = "Technical win rate – (no win, loss or withdrawal yet)"
    if f.get("not_applicable"):
        text += f" · {f['not_applicable']} not applicable"
    if f.get("outcome_missing"):
        text += f" · {f['outcome_missing']} done without an outcome"
    t = f.get("time_to_outcome_days") or {}
    if t.get("p50") is not None:
        text += f" · median {_days(t['p50'])} from request to outcome (p90 {_days(t['p90'])})"
    return text
