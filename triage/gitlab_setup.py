"""GitLab board setup and checks, for the operator commands `triage setup` and `triage check` only:
the labels, the triage board and its lists, and the state of each project's webhooks.

Every call goes through a ``GitLabTracker`` and its error translation (``RetryLater`` / ``Rejected`` with
the HTTP status), so the worker's client and these commands fail the same way. Creates only what is
missing: running setup twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from triage.core.errors import Rejected
from triage.gitlab_tracker import GitLabTracker, _checked_labels, _parse_dt

__all__ = ["DEFAULT_BOARD_NAME", "LabelSpec", "apply_setup", "hook_status", "plan_setup"]

DEFAULT_BOARD_NAME = "SA triage"
DEFAULT_LABEL_COLOR = "#6699cc"  # what GitLab gives labels it creates on the fly

Step = Callable[[], bool]  # does one thing; False when someone else did it meanwhile


class LabelSpec(Protocol):
    """What ``plan_setup``/``apply_setup`` need of a label (``triage.core.labels.LABEL_SPECS`` items)."""

    @property
    def name(self) -> str: ...

    @property
    def color(self) -> str: ...

    @property
    def description(self) -> str | None: ...


def plan_setup(
    tracker: GitLabTracker,
    project: str,
    label_specs: Sequence[LabelSpec],
    board_lists: Sequence[str],
    *,
    board_name: str = DEFAULT_BOARD_NAME,
) -> list[str]:
    """What ``apply_setup`` would still do, as sentences ("create label 'SA Doing'", ...)."""
    return [text for text, _ in _setup_steps(tracker, project, label_specs, board_lists, board_name)]


def apply_setup(
    tracker: GitLabTracker,
    project: str,
    label_specs: Sequence[LabelSpec],
    board_lists: Sequence[str],
    *,
    board_name: str = DEFAULT_BOARD_NAME,
) -> list[str]:
    """Create the missing labels, the board and its lists; touch nothing that exists. Idempotent.

    Existing labels keep their colour and description (people may have tuned them). Returns what it did.
    """
    done: list[str] = []
    for text, step in _setup_steps(tracker, project, label_specs, board_lists, board_name):
        if step():
            done.append(text)
    return done


def _setup_steps(
    tracker: GitLabTracker, project: str, label_specs: Sequence[LabelSpec], board_lists: Sequence[str],
    board_name: str,
) -> list[tuple[str, Step]]:
    specs = {s.name: s for s in label_specs}
    for name in [*specs, *board_lists]:
        _checked_labels([name])
    with tracker._errors(f"read labels and boards of {project}"):
        proj = tracker._project(project)
        labels = {lab.attributes["name"]: lab.attributes for lab in proj.labels.list(get_all=True)}
        boards = [b.attributes for b in proj.boards.list(get_all=True)]
        board = next((b for b in boards if b.get("name") == board_name), None)
        lists: list[dict[str, Any]] = []
        if board is not None:
            lists = [x.attributes for x in proj.boards.get(board["id"], lazy=True).lists.list(get_all=True)]
    listed = {(x.get("label") or {}).get("name") for x in lists}
    state: dict[str, Any] = {"labels": labels, "board_id": board["id"] if board else None}

    steps: list[tuple[str, Step]] = []
    wanted_labels = list(dict.fromkeys([*specs, *board_lists]))
    for name in wanted_labels:
        if name not in labels:
            spec = specs.get(name)
            steps.append((f"create label '{name}'", _step_create_label(tracker, project, state, name, spec)))
    if board is None:
        steps.append((f"create board '{board_name}'", _step_create_board(tracker, project, state, board_name)))
    for name in board_lists:
        if name not in listed:
            steps.append((f"add list '{name}' to board '{board_name}'", _step_add_list(tracker, project, state, name)))
    return steps


def _step_create_label(
    tracker: GitLabTracker, project: str, state: dict[str, Any], name: str, spec: LabelSpec | None
) -> Step:
    def run() -> bool:
        data = {"name": name, "color": spec.color if spec else DEFAULT_LABEL_COLOR}
        if spec is not None and spec.description:
            data["description"] = spec.description
        try:
            with tracker._errors(f"create label '{name}' in {project}"):
                state["labels"][name] = tracker._project(project).labels.create(data).attributes
        except Rejected as e:
            if getattr(e, "status", None) != 409:  # 409: someone created it meanwhile; fine
                raise
            with tracker._errors(f"get label '{name}' in {project}"):
                state["labels"][name] = tracker._project(project).labels.get(name).attributes
            return False
        return True

    return run


def _step_create_board(tracker: GitLabTracker, project: str, state: dict[str, Any], board_name: str) -> Step:
    def run() -> bool:
        with tracker._errors(f"create board '{board_name}' in {project}"):
            state["board_id"] = tracker._project(project).boards.create({"name": board_name}).attributes["id"]
        return True

    return run


def _step_add_list(tracker: GitLabTracker, project: str, state: dict[str, Any], name: str) -> Step:
    def run() -> bool:
        label = state["labels"].get(name)
        if label is None:
            raise Rejected(f"GitLab add board list: label '{name}' does not exist in {project}")
        with tracker._errors(f"add list '{name}' in {project}"):
            board = tracker._project(project).boards.get(state["board_id"], lazy=True)
            board.lists.create({"label_id": int(label["id"])})
        return True

    return run


def hook_status(tracker: GitLabTracker, project: str, url_prefix: str | None = None) -> list[dict[str, Any]]:
    """The project's webhooks (optionally only those whose URL starts with ``url_prefix``).

    Each: ``id``, ``url``, ``issues_events``, ``note_events``, ``confidential_issues_events``,
    ``confidential_note_events``, ``enable_ssl_verification``, ``alert_status``, ``disabled_until``,
    ``disabled`` (GitLab turned it off, for now or for good), ``ok`` (issue + note events, not disabled).
    """
    with tracker._errors(f"list webhooks of {project}"):
        hooks = [h.attributes for h in tracker._project(project).hooks.list(get_all=True)]
    now = datetime.now(UTC)
    out = []
    for h in hooks:
        url = str(h.get("url") or "")
        if url_prefix and not url.startswith(url_prefix):
            continue
        alert = h.get("alert_status") or "executable"
        until = _parse_dt(h["disabled_until"]) if h.get("disabled_until") else None
        disabled = alert in ("disabled", "temporarily_disabled") or (until is not None and until > now)
        entry = {
            "id": h.get("id"),
            "url": url,
            "issues_events": bool(h.get("issues_events")),
            "note_events": bool(h.get("note_events")),
            "confidential_issues_events": bool(h.get("confidential_issues_events")),
            "confidential_note_events": bool(h.get("confidential_note_events")),
            "enable_ssl_verification": bool(h.get("enable_ssl_verification", True)),
            "alert_status": alert,
            "disabled_until": until,
            "disabled": disabled,
        }
        entry["ok"] = entry["issues_events"] and entry["note_events"] and not disabled
        out.append(entry)
    return out
