"""Listener handlers are plain module-level functions: callable alone with their dependencies passed in,
and wired into Bolt with those dependencies bound, so Bolt injects only its own arguments."""

from __future__ import annotations

import asyncio

from slack_bolt.util.utils import get_arg_names_of_callable

from blocks.ids import Input
from triage.slack.listeners import bind, views


class Linker:
    """Stands in for Services: records GitLab usernames linked."""

    def __init__(self) -> None:
        self.linked: list[tuple[str, str]] = []

    def link_gitlab_username(self, user: str, username: str, *, once: str | None = None) -> None:
        self.linked.append((user, username))


def submit_username(value: str, services: Linker) -> list[dict]:
    acks: list[dict] = []

    async def ack(**kwargs) -> None:
        acks.append(kwargs)

    view = {"id": "V0TEST0001", "state": {"values": {Input.GITLAB_USERNAME.value: {Input.GITLAB_USERNAME.value: {
        "type": "plain_text_input", "value": value}}}}}
    asyncio.run(views.gitlab_username_submit(ack, {"user": {"id": "U1"}}, view, services=services))
    return acks


def test_a_view_handler_runs_alone_with_its_services_passed_in():
    services = Linker()
    (refused,) = submit_username("two words", services)
    assert refused["response_action"] == "errors" and Input.GITLAB_USERNAME.value in refused["errors"]
    assert services.linked == []
    assert submit_username(" @dkim ", services) == [{}]
    assert services.linked == [("U1", "dkim")]


def test_bolt_injects_only_its_own_arguments_into_a_bound_handler():
    bound = bind(views.needs_info_submit, services=Linker(), sas=None)
    assert get_arg_names_of_callable(bound) == ["ack", "body", "view", "client"]
    assert bound.__name__ == "needs_info_submit"
