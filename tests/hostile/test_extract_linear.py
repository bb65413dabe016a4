"""Extraction takes linear time on hostile mail.

Anyone who knows a bought address can write to it, and ``wait_for_code`` reads whatever comes. Each
shape below is about 1 MB of text that used to take seconds to hours (quadratic regexes, a quadratic
HTML parser, loops that rescan). Each runs in its own child process with a capped address space,
which reads the shape at a small size and at ``GROWTH`` times that, and measures the CPU time of
each: linear work grows ``GROWTH`` times, quadratic work ``GROWTH ** 2`` times. The test bounds the
ratio, not a duration, so that a loaded machine (which stretches both sizes alike, and the CPU
time little) does not fail it; a generous wall-clock timeout only stops a child that hangs. Where
the answer is meaningful it is checked too.

Run this file as a script to print the time each shape takes:
``python tests/hostile/test_extract_linear.py [SIZE]``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

SIZE = 1_000_000
GROWTH = 8  # the large text is this many times the small one
RATIO = 24.0  # linear work measures about GROWTH times the small size's; quadratic, GROWTH ** 2
SLACK = 0.25  # CPU seconds the large size may take beyond RATIO times the small one (noise)
HANG = 120.0  # wall-clock seconds after which the child is stopped: a hang, not a measure
MEMORY = 1 << 30  # the child's address space


@dataclass(frozen=True)
class Shape:
    """A hostile text: ``unit`` repeated to about ``SIZE`` characters between ``prefix`` and
    ``suffix`` (or around ``middle``), and what extraction must make of it."""

    name: str
    unit: str
    prefix: str = ""
    suffix: str = ""
    middle: str | None = None
    code: str | None = None  # extract_code's answer
    text: str | None = None  # html_to_text's answer, where checked
    links: int | None = None  # how many links extract_links finds, where checked
    subject: bool = False  # the text is the subject too: read twice


NOISE = "lorem 12 ipsum 3456789 dolor, "
LONG = "1" * 50
SHAPES = [
    Shape("letters", "a", subject=True),
    Shape("letters and dots", "a."),
    Shape("capital tokens", "AB1C "),
    Shape("capital tokens after code words", "code: AB1C ", code="AB1C"),
    Shape("capitals and hyphens", "A-"),
    Shape("digits", "1", subject=True),
    Shape("digit groups and spaces", "12 "),
    Shape("digit groups and hyphens", "12-"),
    Shape("single digits and spaces", "1 "),
    Shape("digits and dots", "1."),
    Shape("digits and commas", "1,"),
    Shape("digits and colons", "1:"),
    Shape("thousands", "1 000 "),
    Shape("unicode digits", "\u0663"),
    Shape("long line without spaces", "x1"),
    Shape("code words", "code "),
    Shape("many candidates", "code 123456 ", code="123456", subject=True),
    Shape("many spaced codes", "code 7 4 1 2 9 3 ", code="741293"),
    Shape("many labelled numbers", "order 123456 "),
    Shape("label words", "order number is "),
    Shape("months and days", "jan 1 ", subject=True),
    Shape("plus signs", "+1"),
    Shape("open brackets", "rgb("),
    Shape("at signs", "a@"),
    Shape("letters before an at sign", "a", suffix="@"),
    Shape("dots before an at sign", "a.", suffix="@x"),
    Shape("e-mail addresses", "a@b.cd "),
    Shape("newlines", "\n"),
    Shape("code buried in noise", NOISE, middle="\nYour code: 482913\n", code="482913"),
    Shape("lone <", "<", subject=True),
    Shape("unclosed tags", "<a ", prefix="<p>x</p>", text="x"),
    Shape("unclosed quotes", '<a href="', prefix="<p>x</p>", text="x"),
    Shape("unclosed comments", "<!--", text=""),
    Shape(
        "one unclosed comment", "x", prefix="<p>Code: 4821</p><!--", code="4821", text="Code: 4821"
    ),
    Shape("unclosed script", "<p>", prefix="<p>x</p><script>", text="x"),
    Shape("deep nesting", "<div>", text=""),
    Shape("many tags", "<b>x</b>", suffix="<p>code 4821", code="4821"),
    Shape("table cells", "<td>1</td>", prefix="<table><tr>"),
    Shape("entities &#", "&#", prefix="<p>"),
    Shape("one long entity", "9", prefix="<p>&#", text="\ufffd"),
    Shape("entities", "&amp;", prefix="<p>"),
    Shape("labelled codes before dates", "code: 123456 12.03.2024 ", code="123456"),
    Shape("labelled codes before long numbers", f"code: 123456 {LONG} ", code="123456"),
    Shape(
        "digit noise after a labelled code", f"{LONG} ", prefix="Your code: 123456 ", code="123456"
    ),
    Shape("a letter after each labelled code", "code: 123456a ", code="123456", subject=True),
    Shape("letters right after a labelled code", "a", prefix="Your code: 123456", code="123456"),
    Shape("capitals right after a labelled code", "A", prefix="Your code: 123456", code="123456"),
    Shape("labelled pairs with dashes", "code: 71-44-02 ", code="714402"),
    Shape("dates with dashes", "31-12-24 "),
    Shape("pairs and dashes", "71-44-"),
    Shape("label gaps", "code is : "),
    Shape("labels and blanks", "code" + " " * 40),
    Shape(
        "spaced digits beside numbers", "4 8 2 9 1 3 30571942 ", prefix="Your code: ", code="482913"
    ),
    Shape("single digits and long numbers", "1 22222222 "),
    Shape("one-time passwords", "one-time password X7B2K9 ", code="X7B2K9"),
    Shape("prices in groups", "123456 100 руб "),
    Shape("digits and zero-width spaces", "1\u200b", subject=True),
    Shape("digits and thin spaces", "1&thinsp;", prefix="<p>", text="1 " * 50),
    Shape("links", "http://", links=1),
    Shape("link with closing brackets", ")", prefix="http://x", links=1),
    Shape("many links", '<a href="https://x.io/">y</a>', prefix="<p>", links=1),
]

_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
from kopechka._extract import extract_code, extract_links, html_to_text, looks_like_html
shape, size, growth = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def text_of(size):
    unit = shape["unit"] * max(1, size // len(shape["unit"]))
    if shape["middle"] is None:
        return shape["prefix"] + unit + shape["suffix"]
    half = unit[: len(unit) // 2]
    return half + shape["middle"] + half

def read(text):
    started = time.process_time()
    looks_like_html(text)
    answer = {{
        "code": extract_code(text, subject=text if shape["subject"] else ""),
        "text": html_to_text(text)[:100],
        "links": len(extract_links(text)),
    }}
    return answer, time.process_time() - started

read("code: 123456 <p>x</p>")  # the patterns compile on first use
small = text_of(size // growth)
small_seconds = min(read(small)[1] for _ in range(3))
answer, seconds = read(text_of(size))
answer["small_seconds"], answer["seconds"] = small_seconds, seconds
print(json.dumps(answer))
"""


def run_shape(shape: Shape, size: int = SIZE, timeout: float = HANG) -> dict[str, object]:
    """Extract from one shape at ``size // GROWTH`` and at ``size`` characters in a child
    process; the answers at ``size``, and the CPU seconds each size took."""
    spec = json.dumps(dataclasses.asdict(shape))
    # Untraced: coverage's tracer would triple the time of the loops it times (the other tests
    # cover the same code).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(memory=MEMORY), spec, str(size), str(GROWTH)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_hostile_shape_is_read_in_linear_time(shape: Shape) -> None:
    answer = run_shape(shape)  # raises TimeoutExpired past HANG
    small, large = float(answer["small_seconds"]), float(answer["seconds"])  # type: ignore[arg-type]
    assert large <= RATIO * small + SLACK, f"{GROWTH}x the text took {large / small:.0f}x the time"
    assert answer["code"] == shape.code
    if shape.text is not None:
        assert answer["text"] == shape.text
    if shape.links is not None:
        assert answer["links"] == shape.links


def test_shape_names_are_unique() -> None:
    assert len({s.name for s in SHAPES}) == len(SHAPES)


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else SIZE
    for shape in SHAPES:
        try:
            answer = run_shape(shape, size, timeout=600.0)
            small, large = answer["small_seconds"], answer["seconds"]
            print(
                f"{shape.name:38} {large:7.3f} s  ({small:.3f} s at 1/{GROWTH})  code={answer['code']!r}"
            )
        except subprocess.TimeoutExpired:
            print(f"{shape.name:34} > 600 s")
