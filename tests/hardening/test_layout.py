"""Rule 9: user text can't break the issue's layout. Rendered with a CommonMark parser (markdown-it-py),
as GitLab's Markdown is CommonMark plus extensions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from tests.core.test_issue_template import cleaned_for, render
from triage.core.gitlab_text import neutralize

BREAKERS = ["```", "```python\nprint(1)", "~~~", "   ~~~~ sh", "$$", "````\n", "x\n```\n```\n```"]


def _footer_renders(description: str) -> bool:
    html = MarkdownIt("commonmark").render(description)
    # The marker is an HTML comment block at the end, and the footer's rule and sentence come before it.
    return (html.rstrip().endswith("-->") and "<hr />" in html
            and "<p>Requested by" in html and "SLA: allocate" in html)


@pytest.mark.parametrize("breaker", BREAKERS)
@pytest.mark.parametrize("field", ["why_now", "pain", "champion", "additional_context", "customer_name"])
def test_an_unclosed_fence_in_any_free_text_leaves_footer_and_marker_as_written(field, breaker):
    _, description = _render_with(field, f"Context first.\n{breaker}")
    assert _footer_renders(description), description
    assert "fence" not in [t.type for t in MarkdownIt("commonmark").parse(description)]


def _render_with(field: str, text: str) -> tuple[str, str]:
    cleaned = cleaned_for("opportunity")
    cleaned[field] = text
    return render("opportunity", cleaned)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("`~$ \n>-*#|<!&x1")), max_size=80))
def test_any_markdown_punctuation_in_user_text_keeps_the_footer(text):
    _, description = _render_with("why_now", text)
    assert _footer_renders(description), description


def test_the_fence_still_reads_as_typed():
    assert neutralize("```python") == "\\```python"  # CommonMark shows "```python"
    html = MarkdownIt("commonmark").render(neutralize("```python"))
    assert html == "<p>```python</p>\n"
