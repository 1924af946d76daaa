"""View state <-> field values, and the modal's private_metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError


class ModalMeta(BaseModel):
    """What the request modal carries between views (private_metadata, at most 3,000 characters)."""

    source_channel: str | None = None  # where a message shortcut was used
    source_ts: str | None = None
    # the open request the AE was shown and chose to file beside (an id the database can hold)
    duplicate_ok: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def load(cls, raw: str | None) -> ModalMeta:
        try:
            return cls.model_validate_json(raw) if raw else cls()
        except ValidationError:
            return cls()  # a view from an older version; nothing in it is needed to proceed


def element_value(element: Mapping[str, Any]) -> Any:
    """One view-state element -> the raw value core.fields.validate expects."""
    kind = element.get("type")
    if kind in ("plain_text_input", "url_text_input", "email_text_input", "number_input"):
        return element.get("value")
    if kind in ("static_select", "external_select", "radio_buttons"):
        option = element.get("selected_option")
        return option.get("value") if option else None
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return [o.get("value") for o in element.get("selected_options") or []]
    if kind == "datepicker":
        return element.get("selected_date")
    if kind == "datetimepicker":
        return element.get("selected_date_time")
    if kind == "timepicker":
        return element.get("selected_time")
    if kind == "users_select":
        return element.get("selected_user")
    if kind == "conversations_select":
        return element.get("selected_conversation")
    return element.get("value")


def read_state(state_values: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`view.state.values` -> {field: raw value}; block_id == action_id == field name in our modals."""
    out: dict[str, Any] = {}
    for block_id, actions in (state_values or {}).items():
        if not isinstance(actions, Mapping):
            continue
        element = actions.get(block_id)
        if element is None and actions:
            element = next(iter(actions.values()))
        if isinstance(element, Mapping):
            out[block_id] = element_value(element)
    return out
