from datetime import UTC, date, datetime
from typing import Any

import pytest

from blocks.ids import EXPEDITE_OPTION, CallbackId, Field, Input
from blocks.request_modal import request_modal
from blocks.small_modals import (
    answer_modal,
    breach_reason_modal,
    decline_modal,
    gitlab_username_modal,
    needs_info_modal,
    no_queues_modal,
    text_modal,
)
from blocks.text import MODAL_BLOCKS_MAX, ZWJ
from tests.blocks.checks import mrkdwn_texts, validate_view
from triage.core.fields import (
    ASKS,
    FORM_FIELDS,
    HOSTING,
    MAX_LENGTH,
    MULTILINE,
    REQUEST_TYPES,
    REQUIRED,
)

QUEUES = [("amer-east", "AMER East"), ("emea", "EMEA")]
WHEN = datetime(2030, 5, 6, 15, 30, tzinfo=UTC)


def inputs(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view["blocks"] if b["type"] == "input"]


def by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in inputs(view)}


def state_of(view: dict[str, Any]) -> dict[str, Any]:
    """What Slack would submit if the person changed nothing, as field -> value (like view.state)."""
    values: dict[str, Any] = {}
    for block in inputs(view):
        el = block["element"]
        kind = el["type"]
        if kind in ("plain_text_input", "url_text_input"):
            values[block["block_id"]] = el.get("initial_value")
        elif kind == "static_select":
            values[block["block_id"]] = el.get("initial_option", {}).get("value")
        elif kind in ("multi_static_select", "checkboxes"):
            values[block["block_id"]] = [o["value"] for o in el.get("initial_options", [])]
        elif kind == "datetimepicker":
            values[block["block_id"]] = el.get("initial_date_time")
        elif kind == "datepicker":
            values[block["block_id"]] = el.get("initial_date")
    return values


def full_initial(request_type: str) -> dict[str, Any]:
    """A value for every field the type shows."""
    values: dict[str, Any] = {}
    for name in FORM_FIELDS[request_type]:
        if name == Field.REQUEST_TYPE:
            continue
        if name == Field.QUEUE:
            values[name] = "emea"
        elif name == Field.ASKS:
            values[name] = ["pov", "demo"]
        elif name == Field.HOSTING:
            values[name] = "dedicated"
        elif name in (Field.PREFERRED_DATE_1, Field.PREFERRED_DATE_2):
            values[name] = WHEN
        elif name == Field.EVENT_DATE:
            values[name] = date(2030, 6, 1)
        elif name == Field.EXPEDITE:
            values[name] = True
        elif name == Field.COMMAND_PLAN_URL:
            values[name] = "https://docs.example.com/plan?id=1&x=2"
        else:
            values[name] = f"{name} value with <!here> & @channel"
    return values


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_one_input_per_form_field_in_order(request_type):
    view = request_modal(request_type=request_type, queues=QUEUES)
    validate_view(view)
    blocks = inputs(view)
    assert [b["block_id"] for b in blocks] == list(FORM_FIELDS[request_type])
    assert len(view["blocks"]) == len(FORM_FIELDS[request_type])  # nothing else without notices
    for block in blocks:
        assert block["element"]["action_id"] == block["block_id"]
        assert block["optional"] is (block["block_id"] not in REQUIRED[request_type])


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_elements_follow_the_contract(request_type):
    view = request_modal(request_type=request_type, queues=QUEUES)
    for name, block in by_id(view).items():
        el = block["element"]
        if name in (Field.REQUEST_TYPE, Field.QUEUE, Field.HOSTING):
            assert el["type"] == "static_select"
        elif name == Field.ASKS:
            assert el["type"] == "multi_static_select"
            assert [o["value"] for o in el["options"]] == list(ASKS)
        elif name == Field.COMMAND_PLAN_URL:
            assert el["type"] == "url_text_input"
        elif name in (Field.PREFERRED_DATE_1, Field.PREFERRED_DATE_2):
            assert el["type"] == "datetimepicker"
        elif name == Field.EVENT_DATE:
            assert el["type"] == "datepicker"
        elif name == Field.EXPEDITE:
            assert el["type"] == "checkboxes"
            assert [o["value"] for o in el["options"]] == [EXPEDITE_OPTION]
        else:
            assert el["type"] == "plain_text_input"
            assert el["max_length"] == MAX_LENGTH[name]
            assert el.get("multiline", False) is (name in MULTILINE)
        if name == Field.HOSTING:
            assert [o["value"] for o in el["options"]] == list(HOSTING)


def test_expedite_reason_is_optional_everywhere():
    for request_type in REQUEST_TYPES:
        blocks = by_id(request_modal(request_type=request_type, queues=QUEUES))
        assert blocks[Field.EXPEDITE_REASON]["optional"] is True
        assert blocks[Field.EXPEDITE]["optional"] is True


def test_default_is_the_opportunity_form():
    view = request_modal(queues=QUEUES)
    assert view["type"] == "modal"
    assert view["callback_id"] == CallbackId.SA_REQUEST_MODAL == "sa_request_modal"
    assert view["title"]["text"] == "SA Request"
    assert view["submit"]["text"] == "Submit"
    assert view["close"]["text"] == "Cancel"
    assert [b["block_id"] for b in inputs(view)] == list(FORM_FIELDS["opportunity"])


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_request_type_dispatches_and_shows_the_current_type(request_type):
    block = by_id(request_modal(request_type=request_type, queues=QUEUES))[Field.REQUEST_TYPE]
    assert block["dispatch_action"] is True
    assert block["optional"] is False
    el = block["element"]
    assert [o["value"] for o in el["options"]] == list(REQUEST_TYPES)
    assert el["initial_option"]["value"] == request_type
    # no other block dispatches: typing elsewhere must not send block_actions
    view = request_modal(request_type=request_type, queues=QUEUES)
    others = [b for b in inputs(view) if b["block_id"] != Field.REQUEST_TYPE]
    assert not any(b.get("dispatch_action") for b in others)


def test_unknown_type_is_a_programming_error():
    with pytest.raises(ValueError):
        request_modal(request_type="nope", queues=QUEUES)


def test_queues_are_offered_by_key():
    el = by_id(request_modal(queues=QUEUES))[Field.QUEUE]["element"]
    assert [(o["value"], o["text"]["text"]) for o in el["options"]] == QUEUES
    assert "initial_option" not in el


def test_unknown_initial_values_are_left_out():
    view = request_modal(queues=QUEUES, initial={"queue": "gone", "hosting": "mainframe", "asks": ["x"]})
    validate_view(view)
    state = state_of(view)
    assert state[Field.QUEUE] is None
    assert state[Field.HOSTING] is None
    assert state[Field.ASKS] == []


def test_many_queues_use_option_groups():
    many = [(f"q{i}", f"Queue {i} " + "x" * 100) for i in range(150)]
    view = request_modal(queues=many, initial={"queue": "q120"})
    validate_view(view)
    el = by_id(view)[Field.QUEUE]["element"]
    assert "options" not in el
    assert sum(len(g["options"]) for g in el["option_groups"]) == 150
    assert el["initial_option"]["value"] == "q120"


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_initial_values_round_trip(request_type):
    initial = full_initial(request_type)
    view = request_modal(request_type=request_type, queues=QUEUES, initial=initial)
    validate_view(view)
    state = state_of(view)
    for name, value in initial.items():
        if name in (Field.PREFERRED_DATE_1, Field.PREFERRED_DATE_2):
            assert state[name] == int(WHEN.timestamp())
        elif name == Field.EVENT_DATE:
            assert state[name] == "2030-06-01"
        elif name == Field.EXPEDITE:
            assert state[name] == [EXPEDITE_OPTION]
        elif name == Field.ASKS:
            assert set(state[name]) == set(value)
        else:
            assert state[name] == value, name  # text is kept exactly, not escaped
    assert state[Field.REQUEST_TYPE] == request_type


def test_initial_values_accept_what_view_state_gives():
    """Keeping typed values on a type switch: values as read back from a view_submission's state."""
    view = request_modal(
        queues=QUEUES,
        initial={
            "preferred_date_1": str(int(WHEN.timestamp())),
            "preferred_date_2": int(WHEN.timestamp()),
            "expedite": [EXPEDITE_OPTION],
            "asks": "demo",
        },
    )
    state = state_of(view)
    assert state["preferred_date_1"] == state["preferred_date_2"] == int(WHEN.timestamp())
    assert state["expedite"] == [EXPEDITE_OPTION]
    assert state["asks"] == ["demo"]
    event = request_modal(request_type="event", queues=QUEUES, initial={"event_date": "2030-06-01"})
    assert state_of(event)["event_date"] == "2030-06-01"
    junk = request_modal(request_type="event", queues=QUEUES, initial={"event_date": "junk"})
    assert state_of(junk)["event_date"] is None


def test_fields_of_other_types_are_not_shown():
    view = request_modal(request_type="event", queues=QUEUES, initial={"why_now": "kept elsewhere"})
    assert Field.WHY_NOW not in by_id(view)


def test_over_long_prefill_moves_to_additional_context():
    long_text = "The customer said this. " * 200  # 4800 characters, over why_now's 3000
    view = request_modal(queues=QUEUES, initial={"why_now": long_text, "additional_context": "From #sales."})
    validate_view(view)
    state = state_of(view)
    assert state[Field.WHY_NOW] is None  # left for the person to write, not cut
    extra = state[Field.ADDITIONAL_CONTEXT]
    assert len(extra) <= MAX_LENGTH["additional_context"]
    assert extra.startswith("From #sales.\n\nWhy now? (too long for its field):\nThe customer said this.")
    assert "more characters of the original message did not fit this field]" in extra
    notice = view["blocks"][0]
    assert notice["type"] == "context"
    assert "Why now?" in notice["elements"][0]["text"]
    assert len(inputs(view)) == len(FORM_FIELDS["opportunity"])


def test_over_long_additional_context_is_shortened_with_a_note():
    original = "word " * 1000  # 5000 characters
    view = request_modal(queues=QUEUES, initial={"additional_context": original})
    validate_view(view)
    extra = state_of(view)[Field.ADDITIONAL_CONTEXT]
    assert len(extra) <= MAX_LENGTH["additional_context"]
    kept, _, note = extra.partition("\n[… ")
    assert original.startswith(kept)
    omitted = int(note.split()[0])
    # the note states what is missing (the one space stripped at the cut aside)
    assert 0 <= len(original) - len(kept) - omitted <= 1


def test_over_long_prefill_that_fits_additional_context_is_moved_whole():
    view = request_modal(queues=QUEUES, initial={"customer_name": "A" * 300})
    validate_view(view)
    state = state_of(view)
    assert state[Field.CUSTOMER_NAME] is None
    assert state[Field.ADDITIONAL_CONTEXT] == "Customer (too long for its field):\n" + "A" * 300


@pytest.mark.parametrize("request_type", REQUEST_TYPES)
def test_longest_prefill_for_every_field_still_makes_a_valid_view(request_type):
    initial = full_initial(request_type)
    for name in FORM_FIELDS[request_type]:
        if isinstance(initial.get(name), str) and name != Field.QUEUE and name != Field.HOSTING:
            initial[name] = "é" * 10_000
    view = request_modal(
        request_type=request_type,
        queues=QUEUES,
        initial=initial,
        private_metadata="m" * 3000,
        duplicate_notice="x" * 5000,
    )
    validate_view(view)
    assert len(view["blocks"]) <= MODAL_BLOCKS_MAX


def test_duplicate_notice_is_escaped_at_the_top():
    view = request_modal(queues=QUEUES, duplicate_notice="Looks like SAR-41 <!channel> @here <script>")
    validate_view(view)
    top = view["blocks"][0]
    assert top["type"] == "context"
    text = top["elements"][0]["text"]
    assert "<!channel>" not in text and "<script>" not in text and "@here" not in text
    assert "&lt;!channel&gt;" in text and "@" + ZWJ + "here" in text


def test_private_metadata_is_passed_and_never_cut():
    assert request_modal(queues=QUEUES, private_metadata='{"c":"C1"}')["private_metadata"] == '{"c":"C1"}'
    with pytest.raises(ValueError):
        request_modal(queues=QUEUES, private_metadata="x" * 3001)


def test_no_queues_explains_and_cannot_submit():
    view = request_modal(queues=[])
    assert view == no_queues_modal()
    validate_view(view)
    assert "submit" not in view
    assert "TRIAGE_CONFIG" in " ".join(mrkdwn_texts(view))


def test_text_modal_splits_long_text_and_clips_the_title():
    view = text_modal("A title far longer than twenty-four characters", "line\n" * 2000)
    validate_view(view)
    assert len(view["title"]["text"]) <= 24
    assert len(view["blocks"]) > 1
    assert "submit" not in view


@pytest.mark.parametrize(
    ("view", "callback_id", "names"),
    [
        (needs_info_modal("r1", reference="SAR-1"), CallbackId.NEEDS_INFO_MODAL, [Input.QUESTION]),
        (decline_modal("r1"), CallbackId.DECLINE_MODAL, [Input.REASON]),
        (answer_modal("r1", question="What <!here>?"), CallbackId.ANSWER_MODAL, [Input.ANSWER]),
        (
            gitlab_username_modal("m", email="a&b@x.test"),
            CallbackId.GITLAB_USERNAME_MODAL,
            [Input.GITLAB_USERNAME],
        ),
        (breach_reason_modal("r1"), CallbackId.BREACH_REASON_MODAL, [Input.BREACH_REASON, Input.BREACH_NOTE]),
    ],
)
def test_small_modals(view, callback_id, names):
    validate_view(view)
    assert view["callback_id"] == callback_id
    assert view["submit"]["text"]
    assert [b["block_id"] for b in inputs(view)] == names
    for block in inputs(view):
        assert block["element"]["action_id"] == block["block_id"]
    for text in mrkdwn_texts(view):
        assert "<!here>" not in text


def test_small_modals_carry_the_request_id():
    assert needs_info_modal("r1")["private_metadata"] == "r1"
    assert decline_modal("r1", '{"r":"r1"}')["private_metadata"] == '{"r":"r1"}'
    assert by_id(needs_info_modal("r1"))[Input.QUESTION]["element"]["multiline"] is True
    select = by_id(breach_reason_modal("r1"))[Input.BREACH_REASON]["element"]
    assert [o["value"] for o in select["options"]] == ["capacity", "no_context", "late_triage", "other"]
    assert by_id(breach_reason_modal("r1"))[Input.BREACH_NOTE]["optional"] is True


def test_field_enum_names_every_form_field():
    shown = {name for fields in FORM_FIELDS.values() for name in fields}
    assert shown == {f.value for f in Field}
