"""Code and link extraction: a table of realistic verification mails with distractors, HTML reduction,
and properties over arbitrary text (hypothesis)."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, given, settings
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


# Codes as sites send them (0.2): capitals and digits the mail marks as the code, one digit per
# cell or space, a code only in the subject; and numbers labelled as something else, which are not
# codes. (name, subject, content, expected)
NEW_MAILS: list[tuple[str, str, str, str | None]] = [
    (
        "steam guard, capitals and digits",
        "Your Steam account: Access from new computer",
        "Dear kp1steam,\n\nHere is the Steam Guard code you need to login to account kp1steam:\n\n"
        "F7K2M\n\nThis email was generated because of a login attempt from a web or mobile device "
        "located at 203.0.113.5 (RU).\n\nThe Steam Guard code is required to complete the login. "
        "No one can access your account without also accessing this email.\n\nThe Steam Team\n"
        "https://help.steampowered.com",
        "F7K2M",
    ),
    (
        "steam guard, capitals only, html",
        "Your Steam account: Access from new computer",
        "<html><body><p>Dear kp1steam,</p><p>Here is the Steam Guard code you need to login to "
        'account kp1steam:</p><table><tr><td style="font-size:24px;color:#3a3a3a">QJHRV</td></tr>'
        "</table><p>If you are not attempting to login then please change your Steam password.</p>"
        "<p>The Steam Team</p></body></html>",
        "QJHRV",
    ),
    (
        "epic games, html with footer address",
        "Your Epic Games security code",
        '<table><tr><td><h2>Your security code</h2></td></tr><tr><td style="font-size:32px">'
        "<b>A7X9QZ</b></td></tr><tr><td>This code expires in 15 minutes.</td></tr></table>"
        "<p>&copy; 2024, Epic Games, Inc. 620 Crossroads Blvd. Cary, NC 27518</p>",
        "A7X9QZ",
    ),
    (
        "slack, code with a hyphen",
        "Slack confirmation code: KXR-7TQ",
        "Confirm your email address\n\nYour confirmation code is below — enter it in your open "
        "browser window and we'll help you get signed in.\n\nKXR-7TQ\n\nIf you didn't request this "
        "email, there's nothing to worry about.\n\nSlack Technologies, LLC, 500 Howard Street, "
        "San Francisco, CA 94105",
        "KXR-7TQ",
    ),
    (
        "slack, html",
        "",
        "<h1>Confirm your email address</h1><p>Your confirmation code is below &mdash; enter it in "
        'your open browser window.</p><div style="font-size:30px;letter-spacing:4px">KXR-7TQ</div>'
        "<p>Slack Technologies, 500 Howard Street, San Francisco, CA 94105</p>",
        "KXR-7TQ",
    ),
    (
        "spaced digits",
        "",
        "Your verification code is:\n\n7 4 1 2 9 3\n\nThis code will expire in 10 minutes.",
        "741293",
    ),
    (
        "spaced digits, russian, double spaces",
        "",
        "Код подтверждения:  3  9  8  1  0  6\nНикому не сообщайте этот код.",
        "398106",
    ),
    (
        "one digit per table cell",
        "Verify your email",
        '<p>Enter this code to verify your email:</p><table><tr><td class="d">7</td>'
        '<td class="d">4</td><td class="d">1</td><td class="d">2</td><td class="d">9</td>'
        '<td class="d">3</td></tr></table><p>Need help? Call 1-800-555-0199.</p>',
        "741293",
    ),
    (
        "one digit per cell, russian, phone below",
        "",
        "<p>Код для входа:</p><table><tr><td>3</td><td>9</td><td>8</td><td>1</td><td>0</td>"
        "<td>6</td></tr></table><p>Поддержка: 8 800 555-35-35</p>",
        "398106",
    ),
    (
        "one digit per span",
        "",
        '<p>Ваш код для входа:</p><div class="code"><span>3</span><span>9</span><span>8</span>'
        "<span>1</span><span>0</span><span>6</span></div>",
        "398106",
    ),
    (
        "code only in the subject, address in the body",
        "482913 is your Instagram code",
        "<p>Hi kp1,</p><p>Someone tried to log in to your Instagram account. If this was you, "
        "use the code in the subject line.</p><p>&copy; Instagram. Meta Platforms, Inc., "
        "1601 Willow Road, Menlo Park, CA 94025</p>",
        "482913",
    ),
    (
        "code only in the subject, russian",
        "Код 7301 для входа в ВКонтакте",
        "Никому не сообщайте этот код, даже сотрудникам ВКонтакте.",
        "7301",
    ),
    (
        "code in the subject, order number in the body",
        "59382 — your login code",
        "Order 55123488 is on its way.",
        "59382",
    ),
    (
        "code in the subject wins over a year in the body",
        "Код подтверждения: 602714",
        "Здравствуйте!\n\nС уважением,\nкоманда сервиса\n\n2024",
        "602714",
    ),
    (
        "labelled number in the subject is no code",
        "Your order 552301 has shipped",
        "Thanks for shopping with us.",
        None,
    ),
    (
        "member number beside the code",
        "",
        "Welcome to ShopClub!\nYour member number is 55512345.\nTo finish signing up, enter the "
        "verification code 4471.",
        "4471",
    ),
    (
        "member id only",
        "",
        "Thanks for joining ShopClub.\nMember ID: 834921\nShow it at the till to collect points.",
        None,
    ),
    (
        "account number only",
        "",
        "Your account number: 20481234\nSign in to view your statement.",
        None,
    ),
    (
        "ticket number only",
        "",
        "Ticket 48213 has been updated by our support team.\nReply to this email to add a comment.",
        None,
    ),
    (
        "order confirmation without a code",
        "",
        "Thank you for your order!\nOrder number: 7731940\nTotal: $49.99\nDelivery in 3-5 days.",
        None,
    ),
    (
        "invoice reference of capitals and digits",
        "",
        "Invoice INV-2024-0042 is attached.\nAmount due: 1 200,00 ₽",
        None,
    ),
    (
        "russian order number beside the code",
        "",
        "Номер заказа: 558812.\nКод подтверждения: 4410",
        "4410",
    ),
    (
        "russian personal account beside the code",
        "",
        "Ваш лицевой счёт 12345678.\nДля входа в личный кабинет используйте код 9031.",
        "9031",
    ),
    (
        "russian personal account only",
        "",
        "Лицевой счёт: 40817810\nПоказания счётчика приняты 15.03.2024.",
        None,
    ),
    (
        "russian order number only",
        "",
        "Номер вашего заказа 662301. Мы сообщим, когда он будет отправлен.",
        None,
    ),
    ("russian letter code", "", "Ваш код: K7PQ2X\nНикому не сообщайте его.", "K7PQ2X"),
    (
        "russian word in capitals",
        "",
        "ВАЖНО: никому не сообщайте код подтверждения 5512",
        "5512",
    ),
    (
        "english words in capitals around the code",
        "",
        "IMPORTANT: YOUR CODE IS BELOW\n\n348201\n\nDO NOT SHARE IT WITH ANYONE",
        "348201",
    ),
    (
        "words in capitals, no code",
        "WELCOME TO STEAM",
        "Your account is ready. HELLO and enjoy your games! CODE OF CONDUCT applies.",
        None,
    ),
    (
        "a word after 'code' is no code",
        "",
        "Use the code WELCOME at checkout for free shipping.",
        None,
    ),
    (
        "promo code beside the verification code",
        "",
        "Use promo code SAVE20 for 20% off your first order!\nYour verification code: 582013",
        "582013",
    ),
    ("promo code only", "", "Summer sale! Use promo code SUMMER24 at checkout.", None),
    (
        "russian promo code beside the code",
        "",
        "Дарим промокод LETO2024 на скидку 10%!\nКод подтверждения: 7391",
        "7391",
    ),
    (
        "booking reference beside the code",
        "",
        "Booking reference: XK7Q2P\nYour check-in code: 4812",
        "4812",
    ),
    (
        "reference code only",
        "",
        "Your reference code is ABC123. Keep it for your records.",
        None,
    ),
    ("facebook prefix", "", "FB-48213 is your Facebook confirmation code", "48213"),
    (
        "device name beside the code",
        "",
        "Your Epic Games security code: 482913\nDevice: WIN64, Chrome 120",
        "482913",
    ),
    (
        "model and serial numbers only",
        "",
        "Thanks for registering your product.\nModel: A2848\nSerial: F2LXK3QJ0D",
        None,
    ),
    (
        "zip code beside the code",
        "",
        "Confirm your address: 1600 Main St, Springfield, ZIP code 62704.\nVerification code: 8812",
        "8812",
    ),
    (
        "tracking number beside the code",
        "",
        "Your parcel is on its way. Tracking number: 1Z999AA10123456784.\n"
        "Security code for delivery: 5531",
        "5531",
    ),
    (
        "pagination beside spaced digits",
        "",
        "Page 1 2 3 4 5 Next\nYour code: 9 0 3 1 4 7",
        "903147",
    ),
    (
        "a code word says what the code is for",
        "",
        "Security code for your account: 4821",
        "4821",
    ),
    (
        "capitals and digits near 'verify', no code",
        "Verify your email",
        "Verify your account to join the FIFA23 tournament: https://play.example.com/v/abc",
        None,
    ),
    (
        "postal code in a footer near 'verify'",
        "",
        "Please verify your email with the button above.\nACME INC, 123 MAIN ST, NY 10001",
        None,
    ),
    (
        "microsoft, masked address",
        "Microsoft account security code",
        "Security code: 4821\nIf you don't recognize the Microsoft account k***@example.com, you "
        "can click the link to remove your email address from that account.",
        "4821",
    ),
]


# Codes as senders write them (0.3): digits grouped by dashes after a label (returned without the
# dashes, as the code is typed), one digit per character beside a reference number, a letter code
# with one dash alone under "is below", a letter code in its own cell under a heading.
# (name, content, expected)
SENDER_FORMATS: list[tuple[str, str, str | None]] = [
    ("pairs with dashes", "Your code: 71-44-02", "714402"),
    ("four pairs with dashes", "Your verification code is 90-21-77-13.", "90217713"),
    ("pairs with dashes, russian", "Ваш код: 90-21-77-13\nНикому его не сообщайте.", "90217713"),
    (
        "pairs with dashes, no date",
        "Verification code 12-34-56. It expires in 10 minutes.",
        "123456",
    ),
    (
        "pairs with dashes in html",
        '<p>Your login code</p><p style="font-size:28px"><b>71-44-02</b></p>'
        "<p>Sent 12.03.2024 at 10:42.</p>",
        "714402",
    ),
    ("a date with dashes stays a date", "Your trial ends 31-12-24.", None),
    ("pairs shaped like a date, right after the label", "Your code: 10-11-12", "101112"),
    ("a date with dots right after the label", "Your code: 10.11.12", None),
    ("a date after the code stays a date", "Your code: 4821, sent 31-12-2024", "4821"),
    (
        "spaced digits, reference number in the next cell",
        "<p>Your code:</p><table><tr><td>4</td><td>8</td><td>2</td><td>9</td><td>1</td><td>3</td>"
        "<td>30571942</td></tr></table>",
        "482913",
    ),
    (
        "spaced digits, reference number above",
        '<p style="color:#999">30571942</p><p>Your code:</p>'
        '<p style="letter-spacing:6px">4&nbsp;8&nbsp;2&nbsp;9&nbsp;1&nbsp;3</p>',
        "482913",
    ),
    (
        "spaced digits, reference number on the same line",
        "<div>Verification code 4 8 2 9 1 3 30571942</div>",
        "482913",
    ),
    (
        "spaced digits, reference number below",
        "<h2>Enter this code</h2><div>4 &nbsp; 8 &nbsp; 2 &nbsp; 9 &nbsp; 1 &nbsp; 3</div>"
        "<p>30571942</p>",
        "482913",
    ),
    (
        "spaced by thin spaces, reference number above",
        "<p>48213377</p><p>Use this code to sign in:</p>"
        "<p>5&thinsp;0&thinsp;2&thinsp;8&thinsp;1&thinsp;7</p>",
        "502817",
    ),
    (
        "spaced by hair spaces, reference number below",
        "<p>Your code:</p><p>5&#8202;0&#8202;2&#8202;8&#8202;1&#8202;7</p><p>4821337</p>",
        "502817",
    ),
    (
        "zero-width spaces between the digits",
        "<p>Your code:</p><p>5&#8203;0&#8203;2&#8203;8&#8203;1&#8203;7</p><p>4821337</p>",
        "502817",
    ),
    (
        "zero-width spaces in plain text",
        "Your code:\n5\u200b0\u200b2\u200b8\u200b1\u200b7",
        "502817",
    ),
    (
        "letter code with a dash below, three capitals then digits",
        "Confirm your email address\n\nYour confirmation code is below \u2014 enter it in your "
        "open browser window.\n\nABC-1234\n\nThanks, the team",
        "ABC-1234",
    ),
    (
        "letter code with a dash below, digits first",
        "Your confirmation code is below:\n\n7TQ-KXR\n\nLLC, 500 Howard Street, CA 94105",
        "7TQ-KXR",
    ),
    (
        "letter code with a dash below, html",
        "<p>Your confirmation code is below</p><p>X7Q2-9TKD</p><p>ref 48213901</p>",
        "X7Q2-9TKD",
    ),
    (
        "letter code in a cell under a one-time password heading",
        "<h2>One-time password</h2><table><tr><td style='font-size:28px'>X7B2K9</td></tr></table>"
        "<p>Valid for 10 minutes.</p>",
        "X7B2K9",
    ),
    (
        "letter code in a cell under a heading, a line between",
        "<h1>Your one-time password</h1><table><tr><td>Use it to sign in</td></tr>"
        "<tr><td>8KD3JQ</td></tr></table>",
        "8KD3JQ",
    ),
    ("one time password, plain", "Your one time password:\n\nA1B2C3", "A1B2C3"),
]

# A code right after its label wins over whatever else holds digits. (content, expected)
LABEL_WINS: list[tuple[str, str | None]] = [
    ("Your code: 123456 12.03.2024", "123456"),  # a date
    ("Your code: 123456 1234567890", "123456"),  # a longer number
    ("Your code: 123456 1a2b3c", "123456"),  # digits and letters
    ("Your code: 123456\n1234\n", "123456"),  # a bare number alone on its line
    ("Your code: 123456 " + "1" * 50, "123456"),  # digit noise
    ("Your code: 123456a", "123456"),  # a letter right after the code
    ("<p>Your code: <b>123456</b>Expires in 10 minutes</p>", "123456"),  # tags joined it
    ("Your code: 123456 100 руб", "123456"),  # a price after it
    ("Your code: 123456 for 1 500 ₽", "123456"),
    ("Total $1234.56\n\n9999\n\nYour code: 123456", "123456"),  # numbers before it
    ("Your code: 123456\n\nOrder placed 2024-03-12, call 8 800 555 35 35", "123456"),
    ("Код подтверждения: 123456 12.03.2024", "123456"),  # a keyword after the code word
    ("Your code: 804 291 12.03.2024", "804291"),  # groups joined
    ("Your code: 71-44-02 1234567890", "714402"),
    ("Code: 4821AB", "4821AB"),  # capitals after the digits: a letter code, whole
    ("Your code: 1234567890", None),  # a longer number is no code, labelled or not
    ("Your code: 1234 5678 9012", None),  # also in groups
    ("Your code: 123 456 789", None),
    ("Your code: 12 34 56 78 90", None),
    ("Your code: 1234-5678-9012", None),
    ("Your code: 12.03.2024", None),
]


@pytest.mark.parametrize(("name", "content", "expected"), MAILS, ids=[m[0] for m in MAILS])
def test_realistic_mails(name: str, content: str, expected: str | None) -> None:
    assert extract_code(content) == expected


@pytest.mark.parametrize(
    ("name", "subject", "content", "expected"), NEW_MAILS, ids=[m[0] for m in NEW_MAILS]
)
def test_codes_as_sites_send_them(
    name: str, subject: str, content: str, expected: str | None
) -> None:
    assert extract_code(content, subject=subject) == expected


@pytest.mark.parametrize(
    ("name", "content", "expected"), SENDER_FORMATS, ids=[m[0] for m in SENDER_FORMATS]
)
def test_codes_as_senders_write_them(name: str, content: str, expected: str | None) -> None:
    assert extract_code(content) == expected


@pytest.mark.parametrize(("content", "expected"), LABEL_WINS)
def test_a_code_right_after_its_label_wins(content: str, expected: str | None) -> None:
    assert extract_code(content) == expected


def test_tables_are_large_enough() -> None:
    assert len(MAILS) >= 30
    assert len(NEW_MAILS) >= 30
    shapes = [m for m in NEW_MAILS if m[3] is not None and not m[3].isdigit()]
    labelled = [m for m in NEW_MAILS if m[3] is None]
    assert len(shapes) >= 5
    assert len(labelled) >= 10
    assert any("<" in m[2] for m in NEW_MAILS)
    assert any("код" in m[2].lower() for m in NEW_MAILS)


def test_subject_is_used_when_the_content_has_no_code() -> None:
    assert extract_code("Click the button below.", subject="123456 is your code") == "123456"
    assert extract_code("Code 4321", subject="Order 99887766") == "4321"


def test_a_clear_code_in_the_subject_beats_a_guess_in_the_content() -> None:
    content = "Welcome aboard!\n\n2291\n\nSee you soon."  # alone on its line: a weak guess
    assert extract_code(content) == "2291"
    assert extract_code(content, subject="Your verification code: 771903") == "771903"
    assert extract_code("Your code: 4821", subject="Your code: 7719") == "4821"  # a tie


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"token=(\w+)", "ab12"),
        (r"\b[A-Z]{3}-\d{3}\b", "XYZ-123"),
        (re.compile(r"(\d)\d\d"), "1"),
        (r"nomatch", None),
    ],
)
def test_pattern_overrides(pattern: str | re.Pattern[str], expected: str | None) -> None:
    assert extract_code("Use token=ab12 or XYZ-123 (code 123456)", pattern) == expected


def test_pattern_is_searched_in_the_subject_too() -> None:
    assert extract_code("Nothing here", r"\b(\d{6})\b", subject="482913 is your code") == "482913"
    assert extract_code("Code 111222", r"\b(\d{6})\b", subject="482913") == "111222"
    assert extract_code("Nothing here", r"\b(\d{6})\b", subject="none") is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Your code: 7 4 1 2 9 3", "741293"),  # spaced digits: joined
        ("Your code: 804 291", "804291"),  # groups: joined
        ("Your code: KXR-7TQ", "KXR-7TQ"),  # capitals and digits: as the mail spells them
        ("Your code: F7K2M", "F7K2M"),
        ("Your code is QJHRV.", "QJHRV"),  # capitals without a digit, marked outright
        ("Your code: HELLO", None),  # a word
        ("Your code is BELOW:\n\nMP3X", "MP3X"),  # capitals and digits near a code word
        ("Your code is below:\n\nMPRX", "MPRX"),  # capitals alone on the line after one
        ("Your code is below. Thanks, MPRX team", None),  # capitals not marked as the code
        ("Your code: ВАЖНО", None),  # Cyrillic capitals are words
        ("Check out our F7K2M model today.", None),  # capitals and digits far from a code word
        ("Enter the code in 3 steps: 1 2 3 4", None),  # numbered steps
        ("Code: HTTPS", None),  # an acronym
        ("Code: G-719204", "719204"),  # a prefix the site fills in itself
        ("code for order 12345: 4821", "4821"),
        ("Your order number is 482913. Thanks for confirming.", None),
        ("482210 is your order number. Confirm it.", None),
        ("4821 is your account code", "4821"),
    ],
)
def test_code_shapes(content: str, expected: str | None) -> None:
    assert extract_code(content) == expected


def test_html_to_text() -> None:
    html = "<html><head><title>T</title><style>p{}</style></head><body><p>A&amp;B</p><br/>C<script>x</script></body></html>"
    assert html_to_text(html) == "A&B\nC"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<table><tr><td>7</td><td>4</td></tr><tr><td>x</td></tr></table>", "7 4\nx"),
        ("<p>Your code\n   is\n 4821</p>", "Your code is 4821"),  # source line breaks are spaces
        ("<head><title>T</title><body>after a head never closed", "after a head never closed"),
        ("<p>a</p><!-- hidden <p>b</p> -->c", "a\nc"),
        ("<p>a</p><!-- never closed <p>b</p>", "a"),
        ("<p>a</p><a href='x>y'>b</a>", "a\nb"),  # a quoted '>' does not end the tag
        ("<p>a</p><b class='never closed>c", "a"),
        ("<p>a &lt; b</p><p>3 < 4</p>", "a < b\n3 < 4"),
        ("<p>&#65;&#x42;&#0000000067;</p>", "ABC"),
        ("<p>a&nbsp;&thinsp;&#8202;&#x3000;b</p>", "a b"),  # spaces of any width: one space
        ("<p>a&#8203;&shy;&#x2060;&#xfeff;b</p>", "ab"),  # shown as nothing
        ("<p>a\u202f\u205f\u2000b</p>", "a b"),
        ("<p>&#99999999999999999999;</p>", "\ufffd"),
        ("<SCRIPT>x</script ><P>y", "y"),
        ("<p>x</p><style>never closed <p>y</p>", "x"),
    ],
)
def test_html_reduction(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("content", "links"),
    [
        ("see https://a.io/x, and http://b.io/y.", ["https://a.io/x", "http://b.io/y"]),
        ("dup https://a.io/x https://a.io/x", ["https://a.io/x"]),
        ("(https://en.wikipedia.org/wiki/A_(b)) end", ["https://en.wikipedia.org/wiki/A_(b)"]),
        ("https://a.io/x)).", ["https://a.io/x"]),
        ("https://a.io/(x)(y))", ["https://a.io/(x)(y)"]),
        ("https://a.io/((x)", ["https://a.io/((x)"]),
        (
            '<a href="https://a.io/?a=1&amp;b=2">go</a> https://c.io',
            ["https://a.io/?a=1&b=2", "https://c.io"],
        ),
        ('<a href="mailto:x@y.z">m</a><a href=" https://d.io/ ">d</a>', ["https://d.io/"]),
        ("<A HREF=https://e.io/x>e</A><a title='href=https://f.io'>f</a>", ["https://e.io/x"]),
        ("<p>x</p><!-- <a href='https://g.io'>g</a> -->", []),
        ("no links here; ftp://x.io", []),
    ],
)
def test_extract_links(content: str, links: list[str]) -> None:
    assert extract_links(content) == links


CODE_SHAPE = re.compile(r"\d{4,8}|[A-Z0-9]+(?:-[A-Z0-9]+)*")


@given(st.text())
@settings(max_examples=300)
def test_never_raises(text: str) -> None:
    code = extract_code(text, subject=text)
    assert code is None or CODE_SHAPE.fullmatch(code)
    for link in extract_links(text):
        assert link.startswith(("http://", "https://"))


@given(st.text(alphabet=string.printable + "<>&;#абвгд"))
def test_never_raises_on_markup_like_text(text: str) -> None:
    extract_code("<div>" + text)
    extract_links("<a href='" + text)
    html_to_text("<p>&#" + text)


PLAIN = st.text(alphabet=string.ascii_letters + string.digits + " -:.,\n#%$@/+()" + "кодКОД")


@given(PLAIN)
@settings(max_examples=300)
def test_the_code_comes_from_the_mail(text: str) -> None:
    code = extract_code(text)
    if code is not None:
        assert re.sub(r"[\s-]", "", code) in re.sub(r"[\s-]", "", text)
        assert code.isdigit() or "-" not in code or code in text


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


LOWER_WORDS = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzабвгд", min_size=1, max_size=10), max_size=20
)
STEAM = "23456789BCDFGHJKMNPQRTVWXY"  # Steam Guard's alphabet: no vowel, no 0/1/O/I


@given(
    before=LOWER_WORDS,
    after=LOWER_WORDS,
    code=st.text(alphabet=STEAM, min_size=5, max_size=6).filter(lambda c: not c.isdigit()),
    keyword=st.sampled_from(["Your code is", "Steam Guard code:", "Код:", "security code"]),
)
def test_planted_letter_code_is_found(
    before: list[str], after: list[str], code: str, keyword: str
) -> None:
    text = " ".join([*before, keyword, code, *after])
    assert extract_code(text) == code


@given(
    before=LOWER_WORDS,
    code=st.lists(st.integers(0, 9), min_size=4, max_size=8).map(lambda d: " ".join(map(str, d))),
)
def test_planted_spaced_code_is_found(before: list[str], code: str) -> None:
    digits = code.replace(" ", "")
    assume(digits not in "0123456789")
    text = " ".join([*before, "Your verification code:"]) + f"\n\n{code}\n\nThanks"
    assert extract_code(text) == digits


CAPITAL_WORDS = st.lists(
    st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=10).filter(
        lambda w: any(v in w for v in "AEIOU")
    ),
    min_size=1,
    max_size=8,
)


@given(words=CAPITAL_WORDS, keyword=st.sampled_from(["Your code:", "CODE:", "Код:", "OTP is"]))
def test_words_in_capitals_are_never_codes(words: list[str], keyword: str) -> None:
    assert extract_code(f"{keyword} {' '.join(words)}") is None
    assert extract_code(keyword + "\n\n" + "\n".join(words)) is None


# --- every word and sign the heuristic knows, written out -----------------------------------------


def words(text: str) -> list[str]:
    return text.split()


# Each table lists the words here rather than reading the module's lists, so that a word dropped
# there fails its row. (Words with an open ending are written in one of the forms mail uses.)

LABEL_WORDS = words(
    "order invoice ticket account acct membership member customer client user reference ref"
    " booking reservation confirmation_number confirmation_no tracking shipment parcel package"
    " case request transaction payment receipt policy contract loyalty card ending id zip postal"
    " postcode street st. ave suite apt box model sku item article flight seat room year version"
    " serial imei pnr phone tel fax ext заказа счёт счета договора абонента клиента билета заявки"
    " обращения тикета накладной посылки отправления трека участника карта карты карту карте"
    " картой полиса инн снилс паспорта индекс ул. улица дом д. кв. году года год г. артикул модели"
    " рейса брони платежа платёж квитанции лицевой идентификатор телефона тел."
)


@pytest.mark.parametrize("word", LABEL_WORDS)
def test_a_label_word_makes_the_number_no_code(word: str) -> None:
    number = "Enter the verification code.\n" + word.replace("_", " ") + " 582013"
    assert extract_code(number) is None
    assert extract_code(number.replace(word.replace("_", " "), "Hello")) == "582013"  # the word


@pytest.mark.parametrize("word", LABEL_WORDS)
def test_a_label_after_the_number_makes_it_no_code(word: str) -> None:
    assert extract_code(f"Enter the code.\n582013 is your {word.replace('_', ' ')}.") is None
    assert extract_code("Enter the code.\n582013 is your hello.") == "582013"


OTHER_CODE_WORDS = words(  # "<word> code": a code, but not the one-time code
    "promo promotional coupon discount voucher gift referral zip postal post area country dialing"
    " region error status tracking booking reference product item article qr bar source swift bic"
    " sort reservation"
)
OTHER_CODES_RU = [
    *(
        f"код {w}"
        for w in words(
            "ошибки страны региона товара скидки купона заказа города подразделения отслеживания"
        )
    ),
    "промокод",
    "штрихкод",
    "qr-код",
    "дисконтный код",
    "бонусный код",
    "подарочный код",
]


@pytest.mark.parametrize("label", [f"{w} code" for w in OTHER_CODE_WORDS] + OTHER_CODES_RU)
def test_a_code_that_names_something_else_is_no_code(label: str) -> None:
    assert extract_code(f"Your {label}: 582013") is None
    assert extract_code(f"Your {label}: X7K2M9") is None


CODE_WORDS = words(
    "codes code otp pin passcode token 2fa mfa one-time_password one_time_password код"
    " кода пароль пароля"
)


@pytest.mark.parametrize("word", CODE_WORDS)
def test_a_code_word_lets_a_letter_code_count(word: str) -> None:
    assert extract_code(f"Your {word.replace('_', ' ')}: X7K2M9") == "X7K2M9"


KEYWORDS = words(
    "one-time one_time verification verify confirm confirmation security подтверждения одноразовый"
)


@pytest.mark.parametrize("word", KEYWORDS)
def test_a_keyword_draws_the_code_to_it(word: str) -> None:
    # Without the keyword, two six-digit numbers tie and the first wins.
    assert extract_code(f"Welcome 111111 to the club. {word.replace('_', ' ')} 582013") == "582013"


MONTHS = words(
    "january jan february feb march mar april apr may june jun july jul august aug september sept"
    " sep october oct november nov december dec января январь февраля февраль марта март апреля"
    " апрель мая май июня июнь июля июль августа август сентября сентябрь октября октябрь ноября"
    " ноябрь декабря декабрь"
)


@pytest.mark.parametrize("month", MONTHS)
def test_a_date_with_a_month_name_is_no_code(month: str) -> None:
    assert extract_code(f"Your code expires on 5 {month} 2024.") is None
    assert extract_code(f"Your code expires on {month} 5, 2024.") is None


CURRENCY_BEFORE = words("рублей рубля рубль руб. руб р. usd eur rub gbp dollars dollar euros euro")
CURRENCY_AFTER = words(
    "$ € £ ¥ ₽ ₴ ₸ рублей рубля рубль руб. руб р. usd eur rub gbp dollars dollar"
)
CURRENCY_AFTER += ["euros", "euro"]
SIGNS = words("# № $ € £ ¥ ₽ ₴ ₸")


@pytest.mark.parametrize("word", CURRENCY_BEFORE)
def test_a_price_after_a_currency_word_is_no_code(word: str) -> None:
    assert extract_code(f"Your code is free, it saved you {word} 4500.") is None


@pytest.mark.parametrize("word", CURRENCY_AFTER)
def test_a_price_before_a_currency_is_no_code(word: str) -> None:
    assert extract_code(f"Your code is free, it saved you 4500 {word}.") is None


@pytest.mark.parametrize("sign", SIGNS)
def test_a_number_after_a_sign_is_no_code(sign: str) -> None:
    assert extract_code(f"Your code is free, it saved you {sign}4500.") is None


@pytest.mark.parametrize(
    "blanked",
    [
        "rgb(2048, 4096, 8192)",
        "rgba(2048, 4096, 8192, 1)",
        "no. 4500",
        "nr. 4500",
        "copyright 2024",
        "© 2024",
        "(c) 2024",
        "+7 999 123-45-67",
        "(800) 555-35-35",
        "#4500aa",
        "4500%",
        "10:45",
        "2024-01-31",
        "31.01.2024",
        "1/31/24",
        "555-123-4567",
        "box4500@mail.example",
        "https://example.com/4500",
        "www.example.com/4500",
    ],
)
def test_spans_that_hold_no_code_are_blanked(blanked: str) -> None:
    assert extract_code(f"Your code was sent by Acme, {blanked} (see above).") is None


@pytest.mark.parametrize(
    ("html", "links"),
    [
        ("<a href>x</a>", []),
        ('<a href="">x</a>', []),
        ("<a href=''>x</a>", []),
        ("<a href=>x</a>", []),
        ('<a href="" title="https://t.io">x</a><a href="https://b.io">b</a>', ["https://b.io"]),
    ],
)
def test_an_empty_href_is_no_link(html: str, links: list[str]) -> None:
    assert extract_links(html) == links
    assert extract_code(html + "<p>Your code: 4821</p>") == "4821"


# --- properties over markup built from the fragments mail is made of -------------------------------

FRAGMENTS = st.sampled_from(
    [
        "<p>", "</p>", "<br>", "<td>", "</td>", "<tr>", "<table>", "<div>", "<span>", "</span>",
        "<b>", "</b>", "<h2>", "<!--", "-->", "<script>", "</script>", "<style>", "</style>",
        "<head>", "</head>", "<title>", "<!DOCTYPE html>", "<a href>", '<a href="">',
        "<a href=''>", "<a href=>", '<a href="https://a.io/1?x=1&amp;y=2">', "<a href=https://b.io>",
        "</a>", "<a title='>'>", "&nbsp;", "&amp;", "&#48;", "&#x34;", "&#9999999999;", "&lt;",
        "&", "<", ">", "\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d",
        "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\x1b[31m", "\x00", "\n", " ",
        "code", "Your code:", "Код:", "OTP", "one-time password", "order", "reservation",
        "promo code", "verify", "482913", "804 291", "71-44-02", "7 4 1 2 9 3", "KXR-7TQ", "F7K2M",
        "1" * 50, "12.03.2024", "$149.99", "1 500 ₽", "+7 999 123-45-67", "user1@mail.ru",
        "https://x.io/123456",
    ]
)  # fmt: skip
MARKUP = st.lists(FRAGMENTS, max_size=40).map("".join)


@given(MARKUP)
@settings(max_examples=400)
def test_markup_from_fragments_never_breaks_extraction(text: str) -> None:
    code = extract_code(text, subject=text)
    assert code is None or CODE_SHAPE.fullmatch(code)
    for link in extract_links(text):
        assert link.startswith(("http://", "https://"))
        assert link.strip() == link
        assert "&amp;" not in link
    assert "<p>" not in html_to_text("<p>" + text)


NOISE = st.sampled_from(
    [
        "12.03.2024", "1234567890", "1a2b3c", "1" * 50, "$149.99", "1 500 ₽", "25%", "10:42",
        "+7 999 123-45-67", "1234", "98765", "Order 5531", "Thanks", "Ref 30571942",
        "<p>2024</p>", "<td>4</td><td>8</td>", "&nbsp;", "\u202e", "\u2066", "\u061c",
        "https://x.io/555666", "user99@mail.ru",
    ]
)  # fmt: skip
LABEL = st.sampled_from(
    [
        "Your code:", "Code:", "Your verification code is", "Ваш код:", "Код подтверждения:",
        "OTP", "PIN:", "One-time password:",
    ]
)  # fmt: skip
SEPARATOR = st.sampled_from([" ", "\n", "\n\n", " <br> ", "</p><p>"])


@given(
    before=st.lists(NOISE, max_size=8),
    after=st.lists(NOISE, max_size=8),
    label=LABEL,
    code=st.integers(min_value=1000, max_value=99_999_999).map(str),
    seps=st.lists(SEPARATOR, min_size=20, max_size=20),
)
@settings(max_examples=300)
def test_a_labelled_code_wins_over_noise_in_markup(
    before: list[str], after: list[str], label: str, code: str, seps: list[str]
) -> None:
    parts = [*before, f"{label} {code}", *after]
    text = "".join(part + sep for part, sep in zip(parts, seps, strict=False))
    assume(code not in "".join(before + after))
    for mail in ("<div>" + text, text.replace("<br>", "").replace("</p><p>", "\n")):
        # "Your code: 1000 1234" reads as one code in two groups, as "5512 0817" does
        assume(not re.search(rf"(?<!\d){code} 1234(?!\d)", html_to_text(mail)))
        assert extract_code(mail) == code


RAW_ELEMENTS = words("script style title noscript template iframe xmp noembed noframes head")
BLOCK_TAGS = words(
    "p div br tr li ul ol table h1 h2 h3 h4 h5 h6 hr section article header footer center"
    " blockquote pre body dd dt"  # body: a tag of its own, read in Python
)


@pytest.mark.parametrize("name", RAW_ELEMENTS)
def test_an_element_whose_content_is_dropped(name: str) -> None:
    assert html_to_text(f"<p>a</p><{name}>Your code: 4821</{name}><p>b</p>") == "a\nb"


@pytest.mark.parametrize("name", BLOCK_TAGS)
def test_a_block_tag_breaks_the_line(name: str) -> None:
    assert html_to_text(f"a<{name}>b") == "a\nb"
    assert html_to_text(f"a<{name.upper()} class='x'>b") == "a\nb"


@pytest.mark.parametrize("name", ["td", "th"])
def test_a_cell_is_a_space(name: str) -> None:
    assert html_to_text(f"<{name}>a</{name}><{name}>b</{name}>") == "a b"


@pytest.mark.parametrize("word", words("HTTP HTTPS HTML XHTML SMTP SFTP RSVP CMYK"))
def test_an_acronym_is_no_code(word: str) -> None:
    assert extract_code(f"Code: {word}") is None
