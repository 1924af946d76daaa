"""`triage setup` and `triage check` as an operator runs them, against the fake GitLab and Slack."""

from __future__ import annotations

from tests.conftest import AMER_CHANNEL
from triage.cli import main
from triage.core.labels import ALL_LABELS, BOARD_LISTS

PROJECTS = ("sa-triage-boards/amer-east", "sa-triage-boards/emea")


def test_setup_creates_labels_and_board_once(env, fake_gitlab, capsys):
    assert main(["setup", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "would create label" in plan and "SA Doing" in plan and "board" in plan
    assert fake_gitlab.labels(PROJECTS[0]) == []  # a dry run changes nothing

    assert main(["setup"]) == 0
    for project in PROJECTS:
        labels = {lbl["name"]: lbl for lbl in fake_gitlab.labels(project)}
        assert set(ALL_LABELS) <= set(labels)
        assert all(labels[n]["color"] and labels[n]["description"] for n in ALL_LABELS)
        boards = fake_gitlab.boards(project)
        assert len(boards) == 1
        assert [lst["label"]["name"] for lst in boards[0]["lists"]] == list(BOARD_LISTS)
    capsys.readouterr()
    writes = len([c for c in fake_gitlab.calls if c.method in ("POST", "PUT", "DELETE")])

    assert main(["setup"]) == 0  # the second run changes nothing
    assert "nothing to do" in capsys.readouterr().out
    assert len([c for c in fake_gitlab.calls if c.method in ("POST", "PUT", "DELETE")]) == writes


def test_check_reports_each_problem_and_exits_nonzero(env, fake_slack, fake_gitlab, capsys):
    fake_slack.add_channel(AMER_CHANNEL, is_member=False)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL amer-east: channel C0AMEREAST: invite the bot" in out
    assert "run `triage setup`" in out
    assert "amer-east: webhook" in out and "none sends issue and comment events" in out

    fake_slack.add_channel(AMER_CHANNEL, is_member=True)
    main(["setup"])
    for project in PROJECTS:
        fake_gitlab.add_hook(project, "https://triage.example.com/gitlab/webhook")
    capsys.readouterr()
    assert main(["check"]) == 0, capsys.readouterr().out


def test_check_says_when_gitlab_disabled_the_webhook(env, fake_gitlab, capsys):
    main(["setup"])
    fake_gitlab.add_hook(PROJECTS[0], "https://triage.example.com/gitlab/webhook", disabled=True)
    fake_gitlab.add_hook(PROJECTS[1], "https://triage.example.com/gitlab/webhook")
    capsys.readouterr()
    assert main(["check"]) == 1
    assert "disabled by GitLab" in capsys.readouterr().out


def test_check_with_wrong_tokens(env, capsys):
    env.setenv("GITLAB_TOKEN", "glpat-Z9secretZ9")
    env.setenv("SLACK_BOT_TOKEN", "xoxb-Q7secretQ7")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL slack" in out and "FAIL gitlab" in out
    assert "Z9secretZ9" not in out and "Q7secretQ7" not in out  # secrets never printed


def test_invalid_config_is_one_readable_message(env, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[queues]]\nkey = "amer-east"\nname = "x"\ngitlab_project = "a/b"\n'
                   'slack_channel = "C0X1"\ntimezone = "America/Nwe_York"\n')
    env.setenv("TRIAGE_CONFIG", str(bad))
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "queues[0] (amer-east).timezone" in err and "America/Nwe_York" in err
