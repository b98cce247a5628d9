"""ANSI colours in build logs become classed spans; every other byte is escaped or dropped."""

from __future__ import annotations

from buildcoord.web.pages.ansi import ansi_html


def test_colours_and_bold_become_spans_with_classes() -> None:
    assert (
        ansi_html("\x1b[1;31mFAIL\x1b[0m ok") == '<span class="ansi-bold ansi-fg-31">FAIL</span> ok'
    )


def test_html_in_a_log_line_is_escaped_inside_and_outside_colours() -> None:
    html = ansi_html('<script>alert(1)</script> \x1b[32m"><img src=x onerror=alert(1)>\x1b[0m')
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&#34;&gt;&lt;img" in html


def test_cursor_moves_titles_and_256_colours_are_dropped_not_shown() -> None:
    text = "\x1b[2K\x1b[1Gstep\x1b]0;title\x07 \x1b[38;5;200mpink\x1b[0m\x1b[?25l"
    assert ansi_html(text) == "step pink"


def test_a_reset_part_way_ends_the_colour() -> None:
    assert ansi_html("\x1b[33mwarn\x1b[39m plain") == '<span class="ansi-fg-33">warn</span> plain'


def test_control_characters_and_a_lone_escape_are_removed() -> None:
    assert ansi_html("a\x00b\x07c\x1bd") == "abcd"
