"""Code and link extraction: a table of realistic verification mails with distractors, HTML reduction,
and properties over arbitrary text (hypothesis)."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopechka._extract import extract_code, extract_links, html_to_text

MAILS: list[tuple[str, str, str | None]] = [
    (
        "instagram plain",
        "Hi kp1@example.com,\n\nUse 482913 to verify your Instagram account.\n\nThanks,\nInstagram",
        "482913",
    ),
    ("google G- prefix", "G-719204 is your Google verification code.", "719204"),
    (
        "grouped with space",
        "Your Steam Guard code: 804 291\nIt expires at 14:35 on 12/05/2024.",
        "804291",
    ),
    (
        "grouped with hyphen",
        "Use code 137-954 to sign in. Questions? Call +1 (555) 010-2030.",
        "137954",
    ),
    ("russian code", "Ваш код подтверждения: 5531. Никому не сообщайте его.", "5531"),
    (
        "russian with date and price",
        "Заказ № 882211 от 12.03.2024 на сумму 1 500 ₽.\nКод для входа: 640 112",
        "640112",
    ),
    (
        "russian postal address",
        "ООО «Ромашка», 101000, Москва, ул. Ленина, д. 15.\nВаш одноразовый пароль 90817",
        "90817",
    ),
    ("otp first then year", "OTP: 2291\n© 2024 Example Corp. All rights reserved.", "2291"),
    ("code below price", "Your order total is $149.99 (USD).\nVerification code: 662103", "662103"),
    ("phone and code", "Never share this code. Support: +7 999 123-45-67.\nCode: 3390", "3390"),
    (
        "us address footer",
        "Your PIN is 7712.\n\nAcme Inc, 1600 Amphitheatre Pkwy, Mountain View, CA 94043",
        "7712",
    ),
    (
        "percent distractor",
        "Save 25% today! Your login code 908172 is valid for 10 minutes.",
        "908172",
    ),
    ("time distractor", "Sent at 10:42 PM. Your passcode: 5512 0817", "55120817"),
    ("iso timestamp", "2024-01-01T12:00:00Z — one-time code 120034", "120034"),
    (
        "order number before code",
        "Order #55012339 confirmed.\nTo track it, confirm with 4410",
        "4410",
    ),
    ("invoice number", "Invoice 20240117 is attached. Security code 7781", "7781"),
    ("card tail", "Card 4111 1111 1111 1111 charged 12.00 EUR. Code 332211", "332211"),
    ("url with digits", "Open https://x.com/verify/123456789?t=998877 or enter 4455 below", "4455"),
    ("email with digits", "We sent it to user12345@mail.ru: код 7006", "7006"),
    ("code alone on line, no keyword", "Welcome aboard!\n\n  839201  \n\nSee you soon.", "839201"),
    (
        "code after keyword on next line",
        "Your verification code\n\n55 81 90\n\nExpires in 5 min.",
        "558190",
    ),
    ("8 digit code", "Your Microsoft security code is 12345678", "12345678"),
    ("code in subject only", "Click the button below to continue.", None),
    ("nothing", "Thanks for signing up! Nothing to do here.", None),
    ("only a year", "Copyright 2023 Example", None),
    ("only a phone", "Call us at 8 (800) 555-35-35", None),
    ("only a date", "Your trial ends 2024-02-28.", None),
    ("only an order", "Order # 7788991 shipped on Jan 5, 2024", None),
    ("only a price", "Total: 2 499 руб. Спасибо!", None),
    ("colour in text", "Brand colour #336699, your code 2288", "2288"),
    ("decimal distractor", "Version 2.4501 released; PIN 3321", "3321"),
    (
        "html with style and entities",
        "<html><head><style>.c{color:#112233} td{padding:12px}</style></head><body><table><tr><td>"
        "Your&nbsp;code:</td></tr><tr><td><b>491&nbsp;028</b></td></tr></table>"
        "<p>&copy; 2024 Foo &amp; Bar, 94105</p></body></html>",
        "491028",
    ),
    (
        "html with script",
        "<div><script>var otp = 111111;</script>Ваш код: <strong>3141</strong></div>",
        "3141",
    ),
    (
        "html link with digits",
        '<p>Confirm: <a href="https://a.io/c?id=884422">https://a.io/c?id=884422</a></p><p>or code 7070</p>',
        "7070",
    ),
    ("two codes, keyword decides", "Reference 482210. Your OTP is 771903.", "771903"),
]


@pytest.mark.parametrize(("name", "content", "expected"), MAILS, ids=[m[0] for m in MAILS])
def test_realistic_mails(name: str, content: str, expected: str | None) -> None:
    assert extract_code(content) == expected


def test_table_is_large_enough() -> None:
    assert len(MAILS) >= 30


def test_subject_is_used_when_the_content_has_no_code() -> None:
    assert extract_code("Click the button below.", subject="123456 is your code") == "123456"
    assert extract_code("Code 4321", subject="Order 99887766") == "4321"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"token=(\w+)", "ab12"),
        (r"\b[A-Z]{3}-\d{3}\b", "XYZ-123"),
        (re.compile(r"(\d)\d\d"), "1"),
        (r"nomatch", None),
    ],
)
def test_pattern_overrides(pattern, expected) -> None:
    assert extract_code("Use token=ab12 or XYZ-123 (code 123456)", pattern) == expected


def test_html_to_text() -> None:
    html = "<html><head><title>T</title><style>p{}</style></head><body><p>A&amp;B</p><br/>C<script>x</script></body></html>"
    assert html_to_text(html) == "A&B\nC"


@pytest.mark.parametrize(
    ("content", "links"),
    [
        ("see https://a.io/x, and http://b.io/y.", ["https://a.io/x", "http://b.io/y"]),
        ("dup https://a.io/x https://a.io/x", ["https://a.io/x"]),
        ("(https://en.wikipedia.org/wiki/A_(b)) end", ["https://en.wikipedia.org/wiki/A_(b)"]),
        (
            '<a href="https://a.io/?a=1&amp;b=2">go</a> https://c.io',
            ["https://a.io/?a=1&b=2", "https://c.io"],
        ),
        ('<a href="mailto:x@y.z">m</a><a href=" https://d.io/ ">d</a>', ["https://d.io/"]),
        ("no links here; ftp://x.io", []),
    ],
)
def test_extract_links(content: str, links: list[str]) -> None:
    assert extract_links(content) == links


@given(st.text())
@settings(max_examples=300)
def test_never_raises(text: str) -> None:
    code = extract_code(text)
    assert code is None or (code.isdigit() and 4 <= len(code) <= 8)
    for link in extract_links(text):
        assert link.startswith(("http://", "https://"))


@given(st.text(alphabet=string.printable + "<>&;абвгд"))
def test_never_raises_on_markup_like_text(text: str) -> None:
    extract_code("<div>" + text)
    extract_links("<a href='" + text)


WORDS = st.lists(
    st.text(alphabet=string.ascii_letters + "абвгдеёжз", min_size=1, max_size=10), max_size=30
)


@given(
    before=WORDS,
    after=WORDS,
    code=st.integers(min_value=1000, max_value=99_999_999).map(str),
    keyword=st.sampled_from(
        ["Your code is", "Код:", "OTP", "PIN:", "passcode", "verification code"]
    ),
)
def test_planted_code_is_found(
    before: list[str], after: list[str], code: str, keyword: str
) -> None:
    text = " ".join([*before, keyword, code, *after])
    assert extract_code(text) == code


@given(
    code=st.integers(min_value=100_000, max_value=999_999).map(str), sep=st.sampled_from([" ", "-"])
)
def test_planted_grouped_code_is_found(code: str, sep: str) -> None:
    assert extract_code(f"Your code: {code[:3]}{sep}{code[3:]}. Thanks") == code
