"""Salesforce ids as AEs paste them: 15/18 characters, links, typos, the wrong object."""

from __future__ import annotations

import pytest

from triage.core.salesforce import (
    InvalidSalesforceId,
    checksum,
    find_opportunity_id,
    parse_opportunity_id,
    same_record,
    to_18,
)

# Published 15 -> 18 vectors (the salesforce_id_formatter gem's README, public converter doctests; each
# re-computed with the algorithm), then made-up Opportunity ids with computed suffixes.
VECTORS = [
    ("70130000001tcyI", "70130000001tcyIAAQ"),
    ("a0BA0000000L2ZC", "a0BA0000000L2ZCMA0"),
    ("AaaAABbbBBCccCC", "AaaAABbbBBCccCCZZZ"),
    ("ABCDEFGHIJKLMNO", "ABCDEFGHIJKLMNO555"),
    ("AAaAAbbBBBCcCCC", "AAaAAbbBBBCcCCC123"),
    ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
    ("0065g00000AbCdE", "0065g00000AbCdEAAV"),
    ("006Hs00001XyZ9q", "006Hs00001XyZ9qIAF"),
    ("0063000000LnqvW", "0063000000LnqvWAAR"),
    ("006A000000Qz8fk", "006A000000Qz8fkIAB"),
    ("006bm00000ZpLmN", "006bm00000ZpLmNAAV"),
]
OPPORTUNITIES = [v for v in VECTORS if v[0].startswith("006")]


@pytest.mark.parametrize(("id15", "id18"), VECTORS)
def test_checksum_and_to_18_match_published_vectors(id15, id18):
    assert checksum(id15) == id18[15:]
    assert to_18(id15) == id18
    assert to_18(id18) == id18


def test_known_bad_published_vector_is_rejected_as_a_typo():
    # gist jbaylor-rpx published this suffix; the algorithm gives EAI, so it must not be accepted.
    with pytest.raises(InvalidSalesforceId, match="last three characters"):
        to_18("a0D30000001n7PiEAC")


@pytest.mark.parametrize(("id15", "id18"), OPPORTUNITIES)
@pytest.mark.parametrize(
    "template",
    [
        "{id}",
        "  {id}\n",
        "https://acme.lightning.force.com/lightning/r/Opportunity/{id}/view",
        "https://acme.lightning.force.com/lightning/r/Opportunity/{id}/view?ws=%2Flightning%2Fr",
        "https://acme.my.salesforce.com/{id}",
        "acme.my.salesforce.com/{id}",
        "https://acme--sandbox.sandbox.lightning.force.com/lightning/r/{id}/related/OpportunityLineItems/view",
    ],
)
@pytest.mark.parametrize("length", [15, 18])
def test_opportunity_ids_and_links_normalise_to_18(id15, id18, template, length):
    given = id15 if length == 15 else id18
    assert parse_opportunity_id(template.format(id=given)) == id18


def test_18_char_suffix_is_case_insensitive():
    assert parse_opportunity_id("0065g00000AbCdEaav") == "0065g00000AbCdEAAV"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Paste the Opportunity"),
        ("   ", "Paste the Opportunity"),
        ("0065g00000AbCd", "15 or 18 characters; this one has 14"),
        ("0065g00000AbCdEAA", "this one has 17"),
        ("0065g00000AbCdEAAVX", "this one has 19"),
        ("0015g00000AbCdE", "001 is an Account id"),
        ("0035g00000AbCdE", "003 is a Contact id"),
        ("00Q5g00000AbCdE", "00Q is a Lead id"),
        ("5005g00000AbCdE", "500 is a Case id"),
        ("a0BA0000000L2ZCMA0", "starts with a0B"),
        ("0065g00000AbCdEAAB", "last three characters don't match"),
        ("0065G00000ABCDEAAV", "last three characters don't match"),  # case-mangled body
        ("0065g-0000AbCdE", "only letters and digits; remove '-'"),
        ("0065g 00000AbCdE", "only letters and digits"),
        ("0065g00000AbCdÉ", "only letters and digits"),
        (
            "https://acme.lightning.force.com/lightning/r/Account/0015g00000AbCdEAAV/view",
            "001 is an Account id",
        ),
        (
            "https://acme.lightning.force.com/lightning/o/Opportunity/list",
            "doesn't contain a Salesforce record id",
        ),
        ("https://acme.my.salesforce.com/0065g00000AbCdEAAB", "last three characters don't match"),
    ],
)
def test_bad_input_says_what_is_wrong(text, message):
    with pytest.raises(InvalidSalesforceId, match=message) as info:
        parse_opportunity_id(text)
    assert isinstance(info.value, ValueError)


def test_link_with_account_and_opportunity_ids_picks_the_opportunity():
    url = "https://acme.lightning.force.com/lightning/r/0015g00000AbCdEAAV/related/0065g00000AbCdEAAV/view"
    assert parse_opportunity_id(url) == "0065g00000AbCdEAAV"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can an SA help with 0065g00000AbCdE next week?", "0065g00000AbCdEAAV"),
        ("opp: 006Hs00001XyZ9qIAF.", "006Hs00001XyZ9qIAF"),
        (
            "see <https://acme.lightning.force.com/lightning/r/Opportunity/0063000000LnqvWAAR/view|the opp>",
            "0063000000LnqvWAAR",
        ),
        ("account 0015g00000AbCdE, opp 006A000000Qz8fk", "006A000000Qz8fkIAB"),
        ("typo 0065g00000AbCdEAAB then the real one 006bm00000ZpLmN", "006bm00000ZpLmNAAV"),
        ("no id here", None),
        ("", None),
        ("glued x0065g00000AbCdE or 0065g00000AbCdEAAVX", None),
        ("account only 0015g00000AbCdEAAV", None),
    ],
)
def test_find_opportunity_id_in_a_slack_message(text, expected):
    assert find_opportunity_id(text) == expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("0065g00000AbCdE", "0065g00000AbCdEAAV", True),
        ("0065g00000AbCdEaav", "0065g00000AbCdE", True),
        ("0065g00000AbCdE", "0065g00000abcde", False),  # 15-char ids are case-sensitive
        ("0065g00000AbCdE", "006Hs00001XyZ9q", False),
        ("0065g00000AbCdE", "not an id", False),
        ("a0D30000001n7PiEAC", "a0D30000001n7Pi", False),  # bad checksum is not a match
    ],
)
def test_same_record_compares_via_18_chars(a, b, same):
    assert same_record(a, b) is same
    assert same_record(b, a) is same
