"""Start-up faults as an operator meets them: a bad DATABASE_URL is one readable line from serve, worker and
migrate; `triage check` covers the database and the Socket Mode token; `setup --dry-run` works without a
GitLab token; `triage --version`."""

from __future__ import annotations

import socket

import pytest

from triage import __version__
from triage.cli import main
from triage.core.labels import ALL_LABELS, BOARD_LISTS


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD_URLS = {
    "refused": (f"postgresql://bob:Z9secretZ9@127.0.0.1:{_closed_port()}/triage",
                "is PostgreSQL running there, and is the port right?"),
    "unknown host": ("postgresql://bob:Z9secretZ9@db.invalid:5432/triage", "is the host name in DATABASE_URL right?"),
    "not a URL": ("Z9secretZ9", "DATABASE_URL is not a database URL"),
    "unknown type": ("mysqlx://bob:Z9secretZ9@h/db", "unknown database type 'mysqlx'"),
    "no such directory": ("sqlite:////nonexistent-dir/x/triage.db", "does the file's directory exist"),
}


@pytest.mark.parametrize("command", [["migrate"], ["worker", "--once"], ["serve", "--port", "1"]])
@pytest.mark.parametrize("case", list(BAD_URLS))
def test_bad_database_url_is_one_readable_line(env, capsys, command, case):
    url, hint = BAD_URLS[case]
    env.setenv("DATABASE_URL", url)
    assert main(command) == 3
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("triage: ")]
    assert len(lines) == 1 and hint in lines[0], err
    assert "Traceback" not in err and "Z9secretZ9" not in err  # no stack, no password
    if case == "refused":
        assert "127.0.0.1" in lines[0]  # which host


@pytest.mark.postgres
def test_missing_postgres_database_and_wrong_user_say_what_to_fix(env, capsys, pg_url):
    base = pg_url.rsplit("/", 1)[0]
    env.setenv("DATABASE_URL", base + "/no_such_db_for_triage")
    assert main(["migrate"]) == 3
    assert "create the database" in capsys.readouterr().err
    env.setenv("DATABASE_URL", base.replace("postgres@", "nobody_here@") + "/test")
    assert main(["migrate"]) == 3
    assert "check the user name and password" in capsys.readouterr().err


def test_check_reports_database_and_socket_mode_token(env, fake_slack, capsys):
    env.setenv("SLACK_APP_TOKEN", fake_slack.app_token)
    main(["check"])
    out = capsys.readouterr().out
    assert "ok  database: SQLite file" in out
    assert "ok  database schema: not yet at the latest version: `triage migrate`" in out  # a fresh database
    main(["migrate"])
    capsys.readouterr()
    main(["check"])
    out = capsys.readouterr().out
    assert "ok  database schema: up to date" in out
    assert "ok  slack socket mode: SLACK_APP_TOKEN accepted" in out

    env.setenv("SLACK_APP_TOKEN", "xapp-1-Q7secretQ7")
    env.setenv("DATABASE_URL", f"postgresql://bob:Z9secretZ9@127.0.0.1:{_closed_port()}/triage")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL database: cannot use the database at 127.0.0.1" in out
    assert "FAIL slack socket mode: Slack refused SLACK_APP_TOKEN (invalid_auth)" in out
    assert "Q7secretQ7" not in out and "Z9secretZ9" not in out


def test_setup_dry_run_without_a_gitlab_token_prints_the_whole_plan(env, fake_gitlab, capsys):
    env.delenv("GITLAB_TOKEN")
    assert main(["setup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for queue, project in (("amer-east", "sa-triage-boards/amer-east"), ("emea", "sa-triage-boards/emea")):
        for label in ALL_LABELS:
            assert f"{queue} ({project}): would create label '{label}'" in out
        assert f"{queue} ({project}): would create board" in out
        assert sum(f"{queue} ({project}): would add list" in ln for ln in out.splitlines()) == len(BOARD_LISTS)
    assert "GITLAB_TOKEN is not set" in out
    assert not fake_gitlab.calls  # asked nobody
    assert main(["setup"]) == 2  # the real thing still needs the token
    assert "set GITLAB_TOKEN" in capsys.readouterr().out


def test_a_setting_of_the_wrong_type_is_one_line(env, capsys):
    env.setenv("PORT", "eighty")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "invalid setting PORT" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"triage {__version__}"
    assert __version__[0].isdigit()


def test_worker_with_the_database_down_logs_one_line_a_pass(config_path, caplog):
    import logging

    from tests.conftest import make_settings, wait_for
    from triage.db import make_engine
    from triage.services import Services
    from triage.worker import Worker

    url = f"postgresql+psycopg://bob:Z9secretZ9@127.0.0.1:{_closed_port()}/triage"
    settings = make_settings(DATABASE_URL=url, TRIAGE_CONFIG=str(config_path))
    caplog.set_level(logging.INFO)
    worker = Worker(Services(settings, make_engine(url)))
    worker.start()
    try:
        failed = wait_for(lambda: [r for r in caplog.records if "worker pass failed" in r.getMessage()],
                          timeout=30, what="the failed pass")
    finally:
        worker.stop()
    assert failed[0].exc_info is None  # one line, no traceback
    assert "is PostgreSQL running there" in failed[0].getMessage()
    assert "Z9secretZ9" not in failed[0].getMessage()
