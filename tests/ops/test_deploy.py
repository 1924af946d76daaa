"""The deploy files agree with each other and with the code: the Procfile, requirements.txt for Python
buildpacks, the Dockerfile, docker-compose.yml, .env.example, and the Slack manifests' scopes.

Docker itself is not run here (no engine on the test machines): these check what can be checked statically.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from triage.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, str]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            out[name.strip()] = command.strip()
    return out


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1].strip()) for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def test_requirements_txt_installs_the_package_itself():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == ["."]  # the dependency ranges live in pyproject.toml, once; no URLs


def test_dockerfile_is_slim_non_root_and_runs_the_procfiles_web_command():
    steps = _dockerfile()
    assert re.fullmatch(r"python:3\.1[1-9]-slim", dict(steps)["FROM"])
    user = [v for k, v in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd[:2] == ["sh", "-c"]
    web = _procfile()["web"]
    env, _, command = web.partition(" triage ")
    assert env == "TRIAGE_EMBEDDED_WORKER=false"
    assert cmd[2] == "exec triage " + command  # the same command; the embedded worker is the one difference


def test_compose_runs_app_worker_and_postgres_like_the_procfile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "app", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    procfile = _procfile()
    assert services["app"]["environment"]["TRIAGE_EMBEDDED_WORKER"] == "false"  # as the Procfile's web line
    assert "command" not in services["app"]  # the image's CMD: the Procfile's web command
    assert services["worker"]["command"] == shlex.split(procfile["worker"])
    for name in ("app", "worker"):
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert "@db:5432/" in services[name]["environment"]["DATABASE_URL"]
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["app"]["condition"] == "service_healthy"  # after the migration


def _cli_argv(command: str) -> list[str]:
    """A Procfile or image command as the argv `triage` gets: the shell's ${PORT:-8000} expanded, the leading
    VAR=value assignments and `exec` dropped."""
    argv = shlex.split(command.replace("${PORT:-8000}", "8000"))
    while argv and (argv[0] == "exec" or re.fullmatch(r"[A-Z_]+=\S*", argv[0])):
        argv.pop(0)
    return argv


def test_deploy_commands_are_real_cli_commands(monkeypatch):
    """Each command the Procfile, the image and compose run parses as a `triage` command (a renamed subcommand
    or option would otherwise only show up on the platform)."""
    from triage import cli

    assert "triage = \"triage.cli:main\"" in (ROOT / "pyproject.toml").read_text()  # the console script
    ran = []
    for name in ("serve", "worker", "migrate"):
        monkeypatch.setattr(cli, f"cmd_{name}", lambda args: ran.append(args) or 0)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = [*_procfile().values(), json.loads(dict(_dockerfile())["CMD"])[2],
                shlex.join(compose["services"]["worker"]["command"])]
    for command in commands:
        argv = _cli_argv(command)
        assert argv[0] == "triage", command
        assert cli.main(argv[1:]) == 0, command
    assert [a.command for a in ran] == ["migrate", "serve", "worker", "serve", "worker"]
    for args in ran:
        if args.command == "serve":
            assert (args.host, args.port) == ("0.0.0.0", 8000)  # reachable from outside the dyno/container


def test_compose_db_health_check_asks_over_tcp():
    # On a fresh volume the postgres image first runs a temporary server on the Unix socket only; a check on
    # the socket passes then, and the app would start before PostgreSQL takes connections.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    check = compose["services"]["db"]["healthcheck"]["test"]
    assert "pg_isready" in check[-1] and "-h 127.0.0.1" in check[-1]


def test_env_example_has_no_placeholder_values():
    # A copied .env is read as is: a placeholder such as xoxb-... would count as a configured token.
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"[A-Z][A-Z0-9_]+=", line):
            assert "..." not in line and "<" not in line, line


def test_env_example_names_only_real_settings():
    aliases = {f.alias for f in Settings.model_fields.values()}
    keys = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=", line)
        if m:
            keys.add(m.group(1))
    assert keys <= aliases, keys - aliases
    assert {"DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "GITLAB_TOKEN",
            "GITLAB_WEBHOOK_SECRET", "LOG_LEVEL", "LOG_FORMAT"} <= keys


# Each bot scope, and the Web API methods (as slack_sdk names them) that need it: a scope stays in the
# manifest only while the code calls one of its methods. Methods that need no scope (views.*, chat.getPermalink,
# auth.test) are not listed. https://docs.slack.dev/reference/scopes
SCOPE_METHODS = {
    "chat:write": ("chat_postMessage", "chat_update", "chat_postEphemeral"),
    "commands": ("app.command(", "app.shortcut("),
    "users:read": ("users_info",),
    "users:read.email": ('profile.get("email")',),
    "usergroups:read": ("usergroups_users_list",),
    "channels:read": ("conversations_info",),
    "groups:read": ("conversations_info",),
    "channels:history": ("conversations_history",),
    "groups:history": ("conversations_history",),
}


def _source() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "triage").rglob("*.py"))


def test_manifests_ask_only_for_scopes_the_code_uses():
    source = _source()
    for name in ("manifest.yml", "manifest.socket.yml"):
        manifest = yaml.safe_load((ROOT / name).read_text())
        scopes = manifest["oauth_config"]["scopes"]["bot"]
        assert set(scopes) == set(SCOPE_METHODS), f"{name}: {set(scopes) ^ set(SCOPE_METHODS)}"
        for scope in scopes:
            assert any(m in source for m in SCOPE_METHODS[scope]), f"{name}: {scope} is not used"
    assert "conversations_open" not in source  # so im:write is not needed: DMs are posted to the user's id


def test_socket_manifest_is_the_http_one_without_urls():
    http = yaml.safe_load((ROOT / "manifest.yml").read_text())
    socket = yaml.safe_load((ROOT / "manifest.socket.yml").read_text())
    assert socket["settings"]["socket_mode_enabled"] is True and http["settings"]["socket_mode_enabled"] is False
    assert "triage.example.com" not in (ROOT / "manifest.socket.yml").read_text().split("display_information")[1]
    # Sign in with Slack still sends the browser back to the dashboard, wherever it is served.
    for manifest in (http, socket):
        (callback,) = manifest["oauth_config"].pop("redirect_urls")
        assert callback.startswith("https://") and callback.endswith("/auth/slack/callback")
    for part in ("display_information", "features", "oauth_config"):
        strip = json.loads(json.dumps(http[part]).replace(', "url": "https://triage.example.com/slack/events"', ""))
        assert socket[part] == strip
    assert socket["settings"]["event_subscriptions"]["bot_events"] == http["settings"]["event_subscriptions"][
        "bot_events"]
