"""Operator commands: `triage setup` (labels and board on each project) and `triage check`."""

from __future__ import annotations

from collections.abc import Callable

from triage import checks
from triage.config import Settings
from triage.core.errors import DeliveryError
from triage.core.labels import BOARD_LISTS, LABEL_SPECS
from triage.gitlab_setup import apply_setup, hook_status, plan_setup


def setup(settings: Settings, *, dry_run: bool = False, out: Callable[[str], None] = print) -> int:
    from triage.worker import build_tracker

    tracker = build_tracker(settings)
    if not settings.config.queues:
        out(f"No queues in {settings.triage_config}: nothing to set up.")
        return 2
    if tracker is None:
        if not dry_run:
            out("GitLab is not configured: set GITLAB_TOKEN (and GITLAB_URL) first.")
            return 2
        out("GITLAB_TOKEN is not set, so what exists can't be read: this is the plan for projects that have "
            "none of it yet.")
        for queue in settings.config.queues:
            for step in checks.full_setup_plan():
                out(f"{queue.key} ({queue.gitlab_project}): would {step}")
        return 0
    failed = False
    for queue in settings.config.queues:
        project = queue.gitlab_project
        try:
            steps = (plan_setup if dry_run else apply_setup)(tracker, project, LABEL_SPECS, list(BOARD_LISTS))
        except DeliveryError as e:
            out(f"{queue.key} ({project}): FAILED: {e}")
            failed = True
            continue
        verb = "would" if dry_run else "did"
        if not steps:
            out(f"{queue.key} ({project}): up to date, nothing to do")
        for step in steps:
            out(f"{queue.key} ({project}): {verb} {step}")
    return 1 if failed else 0


def check(settings: Settings, *, out: Callable[[str], None] = print) -> int:
    """Validate config and reach Slack and GitLab; one line per check, non-zero exit when one fails."""
    from triage.worker import build_notifier, build_tracker

    problems = 0

    def line(ok: bool, what: str, detail: str = "") -> None:
        nonlocal problems
        problems += 0 if ok else 1
        out(f"{'ok ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")

    config = settings.config
    line(True, "config", f"{settings.triage_config}: {len(config.queues)} queue(s)")
    if not config.queues:
        line(False, "queues", f"none configured in {settings.triage_config}")
    checks.database(settings, line)
    checks.socket_mode_token(settings, line)

    notifier = build_notifier(settings)
    if notifier is None or not settings.slack_signing_secret:
        line(False, "slack", "not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
    else:
        from triage.slack.notifier import call

        client = notifier.client
        try:
            auth = call(client.auth_test)
            line(True, "slack", f"bot {auth.get('user')} in {auth.get('team')}")
            for q in config.queues:
                try:
                    ch = call(client.conversations_info, channel=q.slack_channel)["channel"]
                    line(bool(ch.get("is_member")), f"{q.key}: channel {q.slack_channel}",
                         "bot is a member" if ch.get("is_member") else "invite the bot to the channel")
                except DeliveryError as e:
                    line(False, f"{q.key}: channel {q.slack_channel}", str(e))
                if q.sa_usergroup:
                    try:
                        users = call(client.usergroups_users_list, usergroup=q.sa_usergroup)["users"]
                        line(bool(users), f"{q.key}: user group {q.sa_usergroup}", f"{len(users)} member(s)")
                    except DeliveryError as e:
                        line(False, f"{q.key}: user group {q.sa_usergroup}", str(e))
                elif not q.sa_users:
                    line(False, f"{q.key}: SAs", "set sa_usergroup or sa_users, or nobody can claim")
            if config.slack.leaders_channel:
                try:
                    ch = call(client.conversations_info, channel=config.slack.leaders_channel)["channel"]
                    line(bool(ch.get("is_member")), f"leaders channel {config.slack.leaders_channel}",
                         "bot is a member" if ch.get("is_member") else "invite the bot to the channel")
                except DeliveryError as e:
                    line(False, f"leaders channel {config.slack.leaders_channel}", str(e))
        except DeliveryError as e:
            line(False, "slack", f"auth.test failed: {e}")

    tracker = build_tracker(settings)
    if tracker is None:
        line(False, "gitlab", "not configured: set GITLAB_TOKEN (and GITLAB_URL if not gitlab.com)")
    else:
        try:
            line(True, "gitlab", f"token of {tracker.whoami()} on {settings.gitlab_url}")
            for q in config.queues:
                what = f"{q.key}: project {q.gitlab_project}"
                if not tracker.project_exists(q.gitlab_project):
                    line(False, what, "not found, or the token can't see it")
                    continue
                line(True, what)
                missing = plan_setup(tracker, q.gitlab_project, LABEL_SPECS, list(BOARD_LISTS))
                line(not missing, f"{q.key}: labels and board",
                     "all there" if not missing else f"{len(missing)} missing: run `triage setup`")
                hooks = [h for h in hook_status(tracker, q.gitlab_project)
                         if h.get("issues_events") and h.get("note_events")]
                active = [h for h in hooks if h.get("ok")]
                if not hooks:
                    line(False, f"{q.key}: webhook", "none sends issue and comment events: add one for "
                         "/gitlab/webhook (README, 'Configuring GitLab')")
                else:
                    line(bool(active), f"{q.key}: webhook",
                         f"{len(active)} active" if active else "disabled by GitLab after failures: re-enable it")
        except DeliveryError as e:
            line(False, "gitlab", str(e))
    out(f"\n{problems} problem(s) found" if problems else "\nall checks passed")
    return 1 if problems else 0
