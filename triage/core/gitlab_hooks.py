"""The GitLab webhook payloads the app reads, as typed models: anything else is refused, field by field.

Only the fields the app uses are declared (others are ignored), each with the type GitLab documents
(https://docs.gitlab.com/user/project/integrations/webhook_events/): ids are positive integers that fit
the database's integer columns, strings are bounded, labels are objects with a `title`. Types are strict:
"23" is not an iid and `true` is not an id, because GitLab never sends those.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triage.core.json_limits import DB_ID_MAX, first_error

# GitLab's ids fit PostgreSQL's integer (4 bytes) on any instance this app serves; our columns are
# integer. Note ids are bigint on large instances, and are only ever put in a URL.
DbId = Annotated[int, Field(strict=True, ge=1, le=DB_ID_MAX)]
NoteId = Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)]
Name = Annotated[str, Field(strict=True, max_length=255)]
# GitLab limits descriptions and comments to 1,048,576 characters.
LongText = Annotated[str, Field(strict=True, max_length=1_048_576)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class HookUser(_Model):
    id: DbId | None = None
    username: Name = ""


class HookProject(_Model):
    id: DbId
    path_with_namespace: Name


class HookLabel(_Model):
    title: Name


class IssueAttributes(_Model):
    id: DbId
    iid: DbId
    state: Annotated[str, Field(strict=True, max_length=32)] = "opened"
    assignee_ids: Annotated[list[DbId], Field(max_length=100)] = []


class IssueHook(_Model):
    object_kind: Literal["issue"]
    user: HookUser | None = None
    project: HookProject
    object_attributes: IssueAttributes
    labels: Annotated[list[HookLabel], Field(max_length=1000)] = []
    assignees: Annotated[list[HookUser], Field(max_length=100)] = []


class NoteAttributes(_Model):
    id: NoteId
    note: LongText = ""
    noteable_type: Annotated[str, Field(strict=True, max_length=64)]
    system: Annotated[bool, Field(strict=True)] = False


class NoteIssue(_Model):
    id: DbId
    iid: DbId


class NoteHook(_Model):
    object_kind: Literal["note"]
    user: HookUser
    project: HookProject
    object_attributes: NoteAttributes
    issue: NoteIssue | None = None  # only comments on issues have one


GitLabHook = IssueHook | NoteHook
_KINDS: dict[str, type[IssueHook] | type[NoteHook]] = {"issue": IssueHook, "note": NoteHook}


class UnreadableHook(ValueError):
    """A hook of a kind we use whose payload is not shaped as GitLab sends it; the message says where."""


def parse_hook(payload: object) -> GitLabHook | None:
    """The typed hook, or None for kinds the app doesn't use (push, merge requests...).

    Raises UnreadableHook naming the first field that is wrong.
    """
    if not isinstance(payload, dict):
        raise UnreadableHook("the body is not a JSON object")
    model = _KINDS.get(payload.get("object_kind")) if isinstance(payload.get("object_kind"), str) else None
    if model is None:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as e:
        raise UnreadableHook(f"{payload['object_kind']} hook: {first_error(e, 'body')}") from None
