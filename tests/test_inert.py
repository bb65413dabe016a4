"""What a server or a mail says is printed inert: every control character, written out here one by
one (not read from ``_format``, so that a character dropped there fails its row), and properties
over text built from the pieces hostile text is made of (escape sequences, bidirectional controls,
line breaks)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopechka._format import inert, json_text

# Removed from printed text: C0 controls but the line breaks and the tab, DEL, C1 controls but NEL,
# and the bidirectional marks, embeddings, overrides and isolates.
C0 = [chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E)]
C1 = [chr(c) for c in range(0x7F, 0xA0) if c != 0x85]
BIDI = [
    "\u061c",  # ARABIC LETTER MARK
    "\u200e",  # LEFT-TO-RIGHT MARK
    "\u200f",  # RIGHT-TO-LEFT MARK
    "\u202a",  # LEFT-TO-RIGHT EMBEDDING
    "\u202b",  # RIGHT-TO-LEFT EMBEDDING
    "\u202c",  # POP DIRECTIONAL FORMATTING
    "\u202d",  # LEFT-TO-RIGHT OVERRIDE
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u2067",  # RIGHT-TO-LEFT ISOLATE
    "\u2068",  # FIRST STRONG ISOLATE
    "\u2069",  # POP DIRECTIONAL ISOLATE
]
# Folded into a space: whatever a terminal or a text reader takes for a line break, and the tab.
BREAKS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\t"]
# Escaped inside a JSON string (json.dumps escapes C0 itself and leaves these raw).
JSON_ESCAPED = [chr(c) for c in range(0x7F, 0xA0)] + BIDI + ["\u2028", "\u2029"]
# Introducers that take what follows with them (a sequence goes whole, parameters included).
INTRODUCERS = {"\x1b", "\x90", "\x98", "\x9b", "\x9d", "\x9e", "\x9f"}


def test_the_tables_cover_every_character_they_name() -> None:
    assert (len(C0), len(C1), len(BIDI), len(BREAKS)) == (24, 32, 12, 11)
    assert len(JSON_ESCAPED) == 47


@pytest.mark.parametrize("char", C0 + C1 + BIDI, ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_character_is_removed(char: str) -> None:
    assert inert(f"a{char}") == "a"
    if char not in INTRODUCERS:
        assert inert(f"a{char}b") == "ab"


@pytest.mark.parametrize("char", BREAKS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_line_break_is_a_space(char: str) -> None:
    assert inert(f"a{char}b") == "a b"


@pytest.mark.parametrize("char", JSON_ESCAPED, ids=lambda c: f"U+{ord(c):04X}")
def test_json_text_escapes_the_character(char: str) -> None:
    shown = json_text(f"a{char}b", indent=None)
    assert shown == f'"a\\u{ord(char):04x}b"'
    assert json.loads(shown) == f"a{char}b"


@pytest.mark.parametrize("char", [chr(c) for c in range(0x20)], ids=lambda c: f"U+{ord(c):04X}")
def test_json_text_leaves_no_c0_control_raw(char: str) -> None:
    shown = json_text(f"a{char}b", indent=None)
    assert not any(ord(c) < 0x20 for c in shown)
    assert json.loads(shown) == f"a{char}b"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b[1;31mred\x1b[0m", "red"),  # CSI, 7-bit
        ("\x9b1;31mred", "red"),  # CSI, 8-bit
        ("\x1b]0;title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]8;;http://e\x1b\\link", "link"),  # OSC ended by ST
        ("\x9d0;title\x9cafter", "after"),  # OSC, 8-bit, ended by the 8-bit ST
        ("\x1bPq#0\x1b\\after", "after"),  # DCS
        ("\x90q#0\x9cafter", "after"),  # DCS, 8-bit
        ("\x1bXsos\x1b\\after", "after"),  # SOS
        ("\x98sos\x9cafter", "after"),
        ("\x1b^pm\x1b\\after", "after"),  # PM
        ("\x9epm\x9cafter", "after"),
        ("\x1b_apc\x1b\\after", "after"),  # APC
        ("\x9fapc\x9cafter", "after"),
        ("\x1bcafter", "after"),  # ESC and one character
        ("\x1b]never ended", ""),  # an unended string runs to the end
    ],
)
def test_an_escape_sequence_goes_whole(raw: str, shown: str) -> None:
    assert inert(raw) == shown


FORBIDDEN = re.compile(
    "[" + "".join(re.escape(c) for c in C0 + C1 + BIDI + BREAKS) + "]"
)  # the test's own set, written out above
PIECES = st.sampled_from(
    [
        *C0, *C1, *BIDI, *BREAKS, "\r\n", "\x1b[", "\x1b]", "\x1bP", "\x1b\\", "\x07", "31m",
        "0;", "[", "]", ";", "m", "\\", "kopechka: ", "Код", "🙂", "a", " ", "1",
    ]
)  # fmt: skip


@given(st.lists(PIECES, max_size=40).map("".join))
@settings(max_examples=400)
def test_text_from_hostile_pieces_prints_inert(text: str) -> None:
    shown = inert(text)
    assert FORBIDDEN.search(shown) is None
    assert len(shown.splitlines()) <= 1
    assert json.loads(json_text(text)) == text
    escaped = json_text(text, indent=None)
    assert not any(c in escaped for c in JSON_ESCAPED + C0)
