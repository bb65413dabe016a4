"""Pulling the one-time code and the links out of a verification mail.

Pure functions over strings: no I/O, no models, never an exception for any input string.

Linear time. Anyone who knows a bought address can write to it, so the text here is hostile.
Every regex either consumes what it scans (no nested or overlapping quantifiers; a run of digits
or letters is entered only at its start) or reads a bounded window, and no loop goes back over
text it has passed. HTML is reduced by one forward scan rather than ``html.parser``, which is
quadratic on unclosed tags. ``tests/hostile/test_extract_linear.py`` holds the shapes that used to
take minutes.

HTML becomes text as a browser shows it: entities decoded, whitespace folded, block tags as line
breaks, table cells as spaces; ``head``, ``style``, ``script``, ``title`` and the like dropped.

The code heuristic, in order:

1. Spans that hold digits but no code are blanked: links, e-mail addresses, colours, dates, times,
   prices, percentages, phone numbers, numbers after ``#`` or ``№``.
2. Candidates: 4-8 digits standing alone, or written in equal groups (``804 291``, ``137-954``,
   ``71-44-02``), or one digit per cell or space (``7 4 1 2 9 3``, also beside a longer number); a
   run of more than 8 digits is one longer number (a phone, a card), never a code. Codes of capital
   letters and digits (``F7K2M``, ``KXR-7TQ``), kept as the mail spells them, count only near a
   word that names a code (*code*, *OTP*, *one-time password*, *код*; not *verify*); capitals
   without a digit only when the mail marks them outright (``code: QJHRV``, or alone on the line
   after such a word) and hold no vowel, so that a word in capitals (``HELLO``, ``STEAM``) is
   never a code. Right after a label (a word that names a code, then blanks, a colon or *is*),
   digits are read up to the first character that cannot continue them, whatever follows
   (``Your code: 123456 12.03.2024``).
3. A number labelled as something else (order, account, member, ticket number; номер заказа, лицевой
   счёт; a promo or zip code) is not a code; when a code word governs the label ("code for your
   account: 4821") the number only scores lower.
4. Each candidate is scored: right after its label scores above anything else; close to a word
   like *code*, *код*, *OTP*, *PIN* scores highest among the rest; alone on its line, or six digits
   long, scores a little; part of a postal address or looking like
   a year scores lower. The best score wins; ties go to the first. The subject is read the same
   way, and its code wins over the content's only with a better score.
"""

from __future__ import annotations

import bisect
import functools
import html
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["extract_code", "extract_links", "html_to_text", "looks_like_html"]

# --- HTML: one forward scan ----------------------------------------------------------------------

_HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|<!--|<!DOCTYPE", re.IGNORECASE)
_RAW = ("script", "style", "title", "noscript", "template", "iframe", "xmp", "noembed", "noframes")
_RAW_END = {name: re.compile(rf"</{name}(?![^\s/>])", re.IGNORECASE) for name in _RAW}
_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
     "section", "article", "header", "footer", "center", "blockquote", "pre", "dd", "dt"}
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
# A tag's attributes: quoted values may hold '>'; an unclosed one runs to the end.
_ATTRIBUTES = r"""[^>"']*(?:(?:"[^"]*"?|'[^']*'?)[^>"']*)*"""


def _tag_names(names: Iterable[str]) -> str:
    """An alternation of tag names in any case, grouped by first letter: the engine rejects
    another name after one comparison (IGNORECASE would compare letter by letter)."""
    by_first: dict[str, list[str]] = {}
    for name in sorted(names, key=len, reverse=True):
        by_first.setdefault(name[0], []).append(name[1:])
    return "|".join(f"[{c}{c.upper()}](?i:{'|'.join(rests)})" for c, rests in by_first.items())


def _tags(names: Iterable[str]) -> re.Pattern[str]:
    return re.compile(rf"</?(?:{_tag_names(names)})(?![^\s/>]){_ATTRIBUTES}>?")


# The markup read in Python: comments, declarations, elements whose content is dropped, and the
# tags that change the state or hold a link. Between two, the other tags are replaced in C (a
# page of <div>, <td> and <span> costs no loop): blocks by a line break, cells by a space.
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)"  # a comment; an unclosed one runs to the end, as in a browser
    r"|<[!?][^>]*>?"  # <!DOCTYPE ...>, <![CDATA[...]]>, <?xml ...?>
    rf"|<(/?)({_tag_names({*_RAW, 'head', 'body', 'a'})})(?![^\s/>])({_ATTRIBUTES})>?",
    re.DOTALL,
)
_BLOCK_TAGS = _tags(_BLOCKS)
_CELL_TAGS = _tags(_CELLS)
_OTHER_TAGS = re.compile(rf"</?[a-zA-Z][^\s/>]*{_ATTRIBUTES}>?")
_ATTRIBUTE = re.compile(  # name, then a value: quoted, or up to a blank
    r"""([^\s"'=/]+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s"']*)))?"""
)
_BLANKS = re.compile(r"[ \t\r\f\v]+")
# Shown as a space (no-break, thin, hair and the like) or as nothing (zero-width, soft hyphen).
_WIDE_SPACES = re.compile("[\xa0\u2000-\u200a\u202f\u205f\u3000]")
_NO_SPACES = re.compile("[\xad\u200b\u2060\ufeff]")
_LINE_BREAKS = re.compile(r" ?\n[ \n]*")
_URL = re.compile(r"https?://[^\s<>\"'\[\]{}|\\^`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\""
# html.unescape turns "&#" + a million digits into int(...): quadratic, or a ValueError past
# Python's digit limit. References that long name no character anyway.
_LONG_CHARREF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{7,})|([0-9]{8,}));?")


def looks_like_html(text: str) -> bool:
    """Return whether ``text`` appears to be HTML rather than plain text."""
    return _HTML_TAG.search(text) is not None


def _long_charref(match: re.Match[str]) -> str:
    hex_digits, decimal = match.groups()
    digits = (hex_digits or decimal).lstrip("0")
    if len(digits) > 7:
        return "\ufffd"
    return html.unescape(f"&#{'x' if hex_digits else ''}{digits or '0'};")


def _unescape(text: str) -> str:
    if "&#" in text:
        text = _LONG_CHARREF.sub(_long_charref, text)
    return html.unescape(text)


class _Reducer:
    """The text parts and the links of an HTML document, in order of appearance."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.links: list[str] = []
        self.in_head = False

    def data(self, chunk: str) -> None:
        if self.in_head or not chunk:
            return
        chunk = chunk.replace("\n", " ")  # a line break in the source is a space
        if "<" in chunk:
            chunk = _BLOCK_TAGS.sub("\n", chunk)
            chunk = _OTHER_TAGS.sub("", _CELL_TAGS.sub(" ", chunk))
        if "&" in chunk:
            chunk = _unescape(chunk)
        self.parts.append(chunk)
        if "://" in chunk:
            self.links.extend(_urls_in(chunk))

    def tag(self, match: re.Match[str], text: str) -> int:
        """Take one piece of markup; return where the scan goes on."""
        name = match.group(2)
        if name is None:
            return match.end()  # a comment or a declaration
        name = name.lower()
        if name in ("head", "body"):
            self.in_head = name == "head" and not match.group(1)
            self.parts.append("\n")
        elif match.group(1):
            pass  # the end of a link, or of an element already skipped
        elif name in _RAW_END:
            close = _RAW_END[name].search(text, match.end())
            return len(text) if close is None else close.start()
        elif name == "a" and not self.in_head:
            self._href(match.group(3))
        return match.end()

    def _href(self, attributes: str) -> None:
        for found in itertools.islice(_ATTRIBUTE.finditer(attributes), 64):
            if found.group(1).lower() == "href":
                href = _unescape(found.group(2) or found.group(3) or found.group(4) or "").strip()
                if href.lower().startswith(("http://", "https://")):
                    self.links.append(href)
                return


def _reduce(text: str) -> _Reducer:
    out = _Reducer()
    position, size = 0, len(text)
    while position < size:
        match = _MARKUP.search(text, position)
        if match is None:
            out.data(text[position:])
            break
        out.data(text[position : match.start()])
        position = out.tag(match, text)
    return out


def _as_shown(text: str) -> str:
    """Spaces of any width as a space, characters shown as nothing dropped."""
    return _NO_SPACES.sub("", _WIDE_SPACES.sub(" ", text))


def html_to_text(text: str) -> str:
    """Reduce HTML to readable text: entities decoded, tags as spaces or line breaks.

    Takes time linear in the length of ``text``, whatever it holds.

    Args:
        text: An HTML document or fragment.

    Returns:
        The text, one block per line, runs of blanks folded.
    """
    raw = _BLANKS.sub(" ", _as_shown("".join(_reduce(text).parts)))
    return _LINE_BREAKS.sub("\n", raw).strip()


def _trim_url(url: str) -> str:
    """Drop trailing punctuation, and closing brackets that close nothing inside the link."""
    body = url.rstrip(_TRAILING + ")")
    tail = url[len(body) :]
    unmatched = url.count(")") - url.count("(")
    keep = min(tail.count(")"), tail.count(")") - unmatched)
    if keep <= 0:
        return body
    return body + ")".join(tail.split(")", keep)[:keep]) + ")"


def _urls_in(text: str) -> list[str]:
    return [_unescape(_trim_url(match.group(0))) for match in _URL.finditer(text)]


def extract_links(content: str) -> list[str]:
    """Return the http(s) links of a mail in order of appearance, without duplicates.

    Takes time linear in the length of ``content``, whatever it holds.

    Args:
        content: The mail's content, plain text or HTML (``href`` attributes count).

    Returns:
        The links, HTML entities decoded.
    """
    links = _reduce(content).links if looks_like_html(content) else _urls_in(content)
    return list(dict.fromkeys(links))


# --- the code heuristic: patterns ---------------------------------------------------------------
# Speed matters beside the bound: the heuristic reads a 1 MB mail in a few passes, each a C loop.
# Most passes start with the character before what they look for (the text is read behind a
# space), so that the engine skips a run of letters or digits without trying a single position
# inside it. The text is lower-cased first (IGNORECASE slows every comparison), and words are
# grouped by first letter, so that a position is rejected after one comparison.

_MONTHS = (
    "january jan february feb march mar april apr may june jun july jul august aug september sept"
    " sep october oct november nov december dec января январь февраля февраль марта март апреля"
    " апрель мая май июня июнь июля июль августа август сентября сентябрь октября октябрь ноября"
    " ноябрь декабря декабрь"
)
# Words near a code: those that name one (all a letter code listens to), and the others.
_CODE_WORDS = (
    "codes code otp pin passcode token 2fa mfa one-time_password one_time_password код* парол*"
)
_KEYWORDS = "one-time one_time verification verify confirm* security подтвержд* одноразов*"
_LABELS = (  # what a number may be instead of a code
    "order invoice ticket account acct membership member customer client user reference ref"
    " booking reservation confirmation_number confirmation_no tracking shipment parcel package case"
    " request transaction payment receipt policy contract loyalty card ending id zip postal"
    " postcode street st. ave suite apt box model sku item article flight seat room year version"
    " serial imei pnr phone tel fax ext заказ* счёт* счет* договор* абонент* клиент* билет* заявк*"
    " обращени* тикет* накладн* посылк* отправлени* трек* участник* карта* карты* карту* карте*"
    " картой* полис* инн снилс паспорт* индекс ул. улица дом д. кв. году года год г. артикул*"
    " модел* рейс* брон* платеж* платёж* квитанци* лицев* идентификатор* телефон* тел."
)
_YEAR = r"(?:\s?\d{4}(?!\d))?"
_THOUSANDS = r"(?:[ \xa0]\d{3}(?!\d))*"
_PRICE = rf"\s?\d[\d,.]*{_THOUSANDS}"  # after a currency: $5, ₽ 1 500
_CURRENCY_AFTER = (
    r"(?:[$€£¥₽₴₸]|рублей|рубля|рубль|руб\.?|р\.|usd|eur|rub|gbp|dollars?|euros?)(?!\w)"
)
_COPYRIGHT = r"\s?\d{4}(?:\s?[-–]\s?\d{4})?"
# What may stand between a label and its number: "Order number: 123", "номер вашего заказа 123".
_FILLER = (
    r"(?:[ \t\xa0#№=*•()\-–—]+|:\s*|(?:number|num|no|nr|id|is|was|ending|in|with|of|your|the"
    r"|номер\w*|ваш\w*|это|n)\b){0,8}"
)


def _words(*groups: tuple[str, str, str]) -> tuple[str, list[str]]:
    """One alternation of lower-case words, from groups of (kind, words, the regex after each),
    grouped by first letter. Each word ends in an empty group, the only groups: ``kinds[i - 1]``
    is the kind of a match whose ``lastindex`` is ``i``. In a word, ``*`` takes any ending and
    ``_`` stands for a blank."""
    by_first: dict[str, list[tuple[str, str]]] = {}
    for kind, words, then in groups:
        for word in words.split():
            rest = re.escape(word[1:]).replace(r"\*", r"\w*").replace("_", r"\s")
            by_first.setdefault(re.escape(word[0]), []).append((kind, rest + then))
    branches, kinds = [], []
    for first, alternatives in by_first.items():
        branches.append(f"{first}(?:{'|'.join(alt + '()' for _, alt in alternatives)})")
        kinds += [kind for kind, _ in alternatives]
    return "(?:" + "|".join(branches) + ")", kinds


_TERMS, _TERM_KINDS = _words(
    # spans that hold digits but no code (links, whose end is far, in a pass of their own)
    ("blank", "rgb rgba", r"\([^()]{0,40}\)"),  # colours
    ("blank", "no nr", r"\.\s?[\w-]+"),  # no. 7
    ("blank", "copyright", _COPYRIGHT),
    ("blank", _MONTHS, rf"\b\.?\s?\d{{1,2}}(?!\d)(?:st|nd|rd|th)?,?{_YEAR}"),  # Jan 5, 2024
    ("blank", "рублей рубля рубль руб. руб р. usd eur rub gbp dollars dollar euros euro", _PRICE),
    # "code" words that name something else: labels too
    (
        "other",
        "promo* coupon discount voucher gift referral zip postal post area country dialing region"
        " error status tracking booking reference product item article qr bar source swift bic"
        " sort reservation",
        rf"[\s-]?codes?\b{_FILLER}",
    ),
    (
        "other",
        "код*",
        r"\s(?:ошибки|страны|региона|товара|скидки|купона|заказа|города|подразделения"
        rf"|отслеживания)(?!\w){_FILLER}",
    ),
    ("other", "промо штрих qr дисконтн* бонусн* подарочн*", rf"[\s-]?код\w*{_FILLER}"),
    ("label", _LABELS, rf"(?!\w){_FILLER}"),
    ("code", _CODE_WORDS, r"(?!\w)"),
    ("keyword", _KEYWORDS, r"(?!\w)"),
)
# A day and a month whose first digit was read already (31.01.2024, 1/31/24), then the same after
# a separator: 71-44-02 or 90-21-77-13 is no date.
_DAY = r"(?:(?<=0)[1-9]|(?<=[12])\d?|(?<=3)[01]?|(?<=[4-9]))"
_MONTH = r"(?:(?<=0)[1-9]|(?<=1)[0-2]?|(?<=[2-9]))"
_DAY_AFTER = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_AFTER = r"(?:0?[1-9]|1[0-2])"
_BLANK_DIGITS_SOURCE = (  # a number's first digit, after the character before it
    r"[^\w](\d(?:"
    r"\d{3}[-./]\d{1,2}[-./]\d{1,2}(?!\d)"  # dates: 2024-01-31
    rf"|(?:{_DAY}[-./]{_MONTH_AFTER}|{_MONTH}[-./]{_DAY_AFTER})(?!\d)"  # 31.01.2024, 1/31/24
    r"[-./]\d{2,4}(?![-./]?\d)"
    r"|\d?:\d{2}(?::\d{2})?(?!\d)(?:\s?[ap]\.?m\.?)?"  # times
    rf"|\d?\s?(?=[a-zа-яё])(?:{'|'.join(_MONTHS.split())})\b\.?{_YEAR}"  # 1 января 2024
    r"|\d\d[-.]\d{3}[-.]\d{4}\b"  # 555-123-4567
    r"|(?<![,.]\d)(?:(?<!\d[ \xa0]\d)(?:\d{0,2}(?:[ \xa0]\d{3}(?!\d)){1,6}(?:[.,]\d{1,2})?"
    r"|[\d,.]{0,24})"  # 150.75 руб, 1 500,00 руб; not 123456 100 руб
    rf"\s?{_CURRENCY_AFTER}|\d{{0,24}}(?:[.,]\d{{1,24}})?\s?%)))"  # percentages
)
_BLANK_SIGNS_SOURCE = (
    r"[#№$€£¥₽₴₸+(©](?:"
    r"(?<=#)[0-9a-f]{3,8}\b"  # colours
    r"|(?<=[#№])\s?[\w-]+"  # numbered things: order #123, № 45
    rf"|(?<=[$€£¥₽₴₸]){_PRICE}"  # prices
    r"|(?<=\+)\d[\d ().-]{6,24}\d"  # phones: +7 (999) 123-45-67
    r"|(?<=\()\d{3,5}\)\s?\d[\d -]{4,16}\d"  # (800) 555-35-35
    rf"|(?<=\()c\){_COPYRIGHT}|(?<=©){_COPYRIGHT})"  # copyright years
)
_LINKS_SOURCE = r"(?:https?://|www\.)\S+"
_EMAIL_SOURCE = r"[^\w.+-]([\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8})"
# Candidates: a run of 4-8 digits, or of up to 8 groups, after the character before it. A longer
# run is one number (a phone, a card), matched nowhere: it is not entered in the middle either.
_RUN_SOURCE = (  # after "G-" a number, after "INV-" no groups: INV-2024-0042 is one name
    r"[^\w/@](\d(?<!\d[-.,: ]\d)(?:(?<![a-zа-яё]-\d)\d{0,7}(?:[ -]\d{1,8}){1,7}|\d{3,7}))"
    r"(?![\w]|[.,/:]\d|[ -]\d)"
)
_SPACED_SOURCE = (  # one digit per cell or per space: 7 4 1 2 9 3; a longer number may stand beside
    r"(\d(?<![\w/@]\d)(?<!\d[.,:-]\d)(?<!(?<!\d)\d[ \t\xa0]\d)(?<!(?<!\d)\d[ \t\xa0]{2}\d)"
    r"(?<!(?<!\d)\d[ \t\xa0]{3}\d)(?:[ \t\xa0]{1,3}\d(?!\d)){3,7})"
    r"(?!\w|[ \t\xa0]{1,3}\d(?!\d)|[.,/:]\d)"
)
_LETTERS_SOURCE = (  # capitals and digits with a capital in them
    r"([A-Z0-9](?<![\w@/.#=&+-][A-Z0-9])(?:(?<=[A-Z])|(?=[0-9-]{0,12}[A-Z]))"
    r"[A-Z0-9]*(?:-[A-Z0-9]+){0,3})(?!\w|[@/+]|[-.]\w)"
)
_LABEL_AFTER_SOURCE = (  # "482210 is your order number", "12345 (order)"; not "4821 order"
    r"(?=[ \t\xa0]*(?:[-–—:(]|(?:is|was|это|your|the|ваш\w*|номер\w*)[ \t\xa0]))"
    r"[ \t\xa0]*(?:[-–—:(][ \t\xa0]*)?(?:(?:is|was|это)[ \t\xa0]+)?"
    r"(?:(?:your|the|ваш\w*|номер\w*)[ \t\xa0]+){0,2}"
    + "(?:"
    + "|".join(re.escape(w).replace(r"\*", r"\w*").replace("_", r"\s") for w in _LABELS.split())
    + r")(?!\w)(?![\s-]{0,3}(?:codes?|pin|otp|passcode|код))"
)
_MARKER_GAP_SOURCE = r"[\s:=\-–—]*(?:is|это|here|ниже|below)?[\s:=\-–—\"'«“]*"
# Right after a label ("Your code: ", "Код подтверждения — "): where a labelled code starts.
_LABEL_GAP_SOURCE = (
    r"[ \t\xa0\n:=\-–—*]{0,12}(?:(?:is|это|here|ниже|below)(?!\w)[ \t\xa0\n:=\-–—*]{0,12})?"
    r"[\"'«“]?"
)
# The code there, when no other pass took it: what follows it cannot continue a number (a date,
# a long number, a letter code's capitals), whatever stands after that.
_LABELLED_SOURCE = (  # not the start of more than 8 digits in groups (1234 5678 9012)
    r"(?!\d{4}(?: \d{4}){2}|\d{3}(?: \d{3}){2}|\d{2}(?: \d{2}){4})"
    r"(?:\d{2}(?:-\d{2}){1,3}|\d{3}-\d{3}|\d{4}-\d{4}|\d{2}(?: \d{2}){1,3}|\d{3} \d{3}"
    r"|\d{4} \d{4}|\d{4,8})(?!\d|[.,:/-]\d|[A-Z]{1,13}(?![A-Za-z]))"
)
_STATE_OR_CITY_SOURCE = r"\b[A-Z]{2} $|^,\s?[A-ZА-Я][a-zа-яё]+\b"
_STREET_SOURCE = (
    r"[ \t]+(?:[A-Z][a-z]+[ \t]+){1,3}(?:Road|Rd|Street|St|Avenue|Ave|Boulevard|Blvd|Drive|Dr|"
    r"Lane|Ln|Way|Parkway|Pkwy|Court|Ct|Place|Pl|Square|Sq|Highway|Hwy|Terrace|Circle)\b"
)
_ACRONYMS = frozenset({"HTTP", "HTTPS", "HTML", "XHTML", "SMTP", "SFTP", "RSVP", "CMYK"})
_VOWELS = frozenset("AEIOU")
_PAIRS = re.compile(r"\d\d(?:-\d\d){2,3}")
_PREFIXED = re.compile(r"[A-Z]{1,2}-\d{4,8}")  # G-719204, FB-48213: the digits are the code
_LINE_BLANKS = re.compile(r"[ \t\r\-:.]*")
_NEAR = 80.0  # a letter code or a spaced one counts only this close to a code word
_LABEL_WINS = 60.0  # right after its label, a code beats any number that is only alone or near
# A verification mail holds a few numbers. One with thousands is read up to its first ones, so
# that the work per candidate (a few microseconds of Python) stays bounded.
_MAX_CANDIDATES = 1000
_LOWER = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "abcdefghijklmnopqrstuvwxyzабвгдеёжзийклмнопрстуфхцчшщъыьэюя",
)


@dataclass(frozen=True)
class _Patterns:
    terms: re.Pattern[str]
    links: re.Pattern[str]
    blank_digits: re.Pattern[str]
    blank_signs: re.Pattern[str]
    email: re.Pattern[str]
    run: re.Pattern[str]
    spaced: re.Pattern[str]
    letters: re.Pattern[str]
    label_after: re.Pattern[str]
    marker_gap: re.Pattern[str]
    label_gap: re.Pattern[str]
    labelled: re.Pattern[str]
    state_or_city: re.Pattern[str]
    street: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    """The heuristic's regexes, compiled on first use so that importing kopechka stays cheap."""
    c = re.compile
    return _Patterns(
        terms=c(rf"[^\w](?=[a-zа-яё2])(?={_TERMS})"),
        links=c(_LINKS_SOURCE),
        blank_digits=c(_BLANK_DIGITS_SOURCE),
        blank_signs=c(_BLANK_SIGNS_SOURCE),
        email=c(_EMAIL_SOURCE),
        run=c(_RUN_SOURCE),
        spaced=c(_SPACED_SOURCE),
        letters=c(_LETTERS_SOURCE),
        label_after=c(_LABEL_AFTER_SOURCE),
        marker_gap=c(_MARKER_GAP_SOURCE),
        label_gap=c(_LABEL_GAP_SOURCE),
        labelled=c(_LABELLED_SOURCE),
        state_or_city=c(_STATE_OR_CITY_SOURCE),
        street=c(_STREET_SOURCE),
    )


# --- the code heuristic: passes -----------------------------------------------------------------

Span = tuple[int, int]


def _lower(text: str) -> str:
    """Lower case, position for position (``str.lower`` lengthens a few letters, such as İ)."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_LOWER)


def _terms(behind: str) -> dict[str, list[Span]]:
    """The spans of the words that matter, by kind (see ``_TERMS``), each list sorted; in the
    text behind a space. The pattern looks ahead from the character before each word: a word is
    never hidden by the one before it. No word's pattern reads past another word's start unless
    its length is bounded, so that the whole stays linear (links have a pass of their own)."""
    found: dict[str, list[Span]] = {kind: [] for kind in set(_TERM_KINDS)}
    for match in _patterns().terms.finditer(behind):
        end = match.lastindex or 0
        found[_TERM_KINDS[end - 1]].append((match.end() - 1, match.start(end) - 1))
    return found


def _groups(pattern: re.Pattern[str], behind: str) -> list[Span]:
    """The spans of group 1 of a pattern that starts on the character before it, in the text
    behind a space."""
    return [(m.start(1) - 1, m.end(1) - 1) for m in pattern.finditer(behind)]


def _blanks_end(text: str, start: int) -> int:
    """Where the blanks, dashes and colons from ``start`` end."""
    blanks = _LINE_BLANKS.match(text, start)
    return start if blanks is None else blanks.end()


def _outside(found: list[Span], spans: list[Span]) -> list[Span]:
    """The spans of ``found`` that start outside every one of ``spans``; both sorted by start."""
    if not spans:
        return found
    kept, j = [], 0
    for start, end in found:
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        if j == len(spans) or start < spans[j][0]:
            kept.append((start, end))
    return kept


# --- the code heuristic: candidates ---------------------------------------------------------------


class _Candidate(NamedTuple):
    code: str
    start: int
    end: int
    kind: str  # "digits", "spaced", "letters" (capitals and digits) or "capitals" (no digit)


def _split_run(run: str, start: int) -> list[_Candidate]:
    if " " not in run and "-" not in run:
        return [_Candidate(run, start, start + len(run), "digits")] if len(run) <= 8 else []
    groups = re.split(r"[ -]", run)
    digits = "".join(groups)
    uniform = len({len(g) for g in groups}) == 1 and 2 <= len(groups[0]) <= 4
    if uniform and 4 <= len(digits) <= 8:
        return [_Candidate(digits, start, start + len(run), "digits")]
    if "-" in run or len(digits) > 8:
        return []  # one longer number: a phone, a card, an order reference
    out, offset = [], start
    for group in run.split(" "):
        if 4 <= len(group) <= 8:
            out.append(_Candidate(group, offset, offset + len(group), "digits"))
        offset += len(group) + 1
    return out


def _letter_kind(token: str) -> str | None:
    plain = token.replace("-", "")
    if not 4 <= len(plain) <= 12 or _PREFIXED.fullmatch(token):
        return None
    if any(ch.isdigit() for ch in plain):
        return "letters"
    if len(plain) <= 8 and not _VOWELS.intersection(plain) and plain not in _ACRONYMS:
        return "capitals"
    return None


# --- the code heuristic: scoring ------------------------------------------------------------------


class _Near:
    """Words near a code, sorted: how far a span stands from the nearest."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans
        self.starts = [start for start, _ in spans]
        self.ends = [end for _, end in spans]

    def before(self, start: int) -> tuple[int, float]:
        """The end of the nearest word before ``start``, and its distance."""
        i = bisect.bisect_right(self.ends, start)
        if i == 0:
            return -1, 999.0
        return self.ends[i - 1], float(start - self.ends[i - 1])

    def distance(self, start: int, end: int) -> float:
        before = self.before(start)[1]
        j = bisect.bisect_left(self.starts, end)
        after = (self.starts[j] - end) * 1.5 if j < len(self.starts) else 999.0
        return min(before, after)  # "code: N" reads better than "N code"


class _Context:
    """One text, its lower-cased copy, what is blanked in it, its code words and its labels."""

    def __init__(self, text: str) -> None:
        p = _patterns()
        self.text = text
        self.low = low = _lower(text)
        self._behind = behind = " " + low  # for the patterns that start on the character before
        found = _terms(behind)
        blanked = found["blank"] + _groups(p.blank_digits, behind)
        blanked += [m.span() for pattern in (p.links, p.blank_signs) for m in pattern.finditer(low)]
        if "@" in low:
            blanked += _groups(p.email, behind)
        blanked.sort()  # a few sorted runs: a linear merge for timsort
        self._blank_starts = [start for start, _ in blanked]
        self._blank_reach = list(itertools.accumulate((end for _, end in blanked), max))
        code_words = _outside(_outside(found["code"], blanked), found["other"])
        keywords = _outside(found["keyword"], blanked)
        self.words = _Near(sorted(code_words + keywords))
        self.code_words = _Near(code_words)
        labels = _outside(sorted(found["label"] + found["other"]), blanked)
        self.labels = {end: start for start, end in labels}
        self.after_label = self._after_labels(keywords)
        self._reversed = ""
        self._budget: dict[str, int] = {}

    def _after_labels(self, keywords: list[Span]) -> set[int]:
        """Where a code would start right after a label: a word that names a code, or a keyword
        a few characters after one ("Код подтверждения: "), then blanks, a colon or *is*. Each
        look reads a bounded window after one of the first ``_MAX_CANDIDATES`` labels."""
        gap = _patterns().label_gap
        labels = [end for _, end in self.code_words.spans[:_MAX_CANDIDATES]]
        for start, end in keywords[:_MAX_CANDIDATES]:
            kw_end, distance = self.code_words.before(start)
            if distance <= 24 and "\n" not in self.low[kw_end:start]:
                labels.append(end)
        found = set()
        for end in labels:
            match = gap.match(self.low, end, end + 40)
            if match is not None and match.end() < len(self.low):
                found.add(match.end())
        return found

    def labelled(self) -> Iterator[_Candidate]:
        """The digits right after a label that no other pass reads as a code: one followed by a
        date, a longer number or a letter (``Your code: 123456 12.03.2024``)."""
        pattern = _patterns().labelled
        for start in sorted(self.after_label):
            match = pattern.match(self.text, start, start + 40)
            if match is None:
                continue
            found = _split_run(match.group(0), start)
            if _PAIRS.fullmatch(match.group(0)):
                yield from found  # "code: 10-11-12" is a code, though shaped like a date
            else:
                yield from self._kept(found)

    def blanked(self, start: int, end: int) -> bool:
        """Whether the span overlaps a blanked one."""
        i = bisect.bisect_left(self._blank_starts, end)
        return i > 0 and self._blank_reach[i - 1] > start

    def candidates(self) -> Iterator[_Candidate]:
        """Runs of digits, the first ``_MAX_CANDIDATES`` anywhere; then, near the first
        ``_MAX_CANDIDATES`` code words, the other runs, spaced digits and letter codes. Each
        pass near code words reads at most ``_MAX_CANDIDATES`` matches."""
        runs = _patterns().run.finditer(self._behind)
        read = len(self.low)
        for count, match in enumerate(runs):
            if count == _MAX_CANDIDATES:
                read = match.start()
                break
            yield from self._kept(_split_run(match.group(1), match.start(1) - 1))
        self._budget = dict.fromkeys(("run", "spaced", "letters"), _MAX_CANDIDATES)
        for start, stop in self._windows():
            yield from self._kept(self._near(start, stop, read))
        yield from self.labelled()

    def _kept(self, candidates: Iterable[_Candidate]) -> Iterator[_Candidate]:
        return (c for c in candidates if not self.blanked(c.start, c.end))

    def _read(self, kind: str, text: str, start: int, stop: int) -> Iterator[re.Match[str]]:
        """The matches of a pass that start in ``[start, stop]``, read a little past ``stop``
        so that one starting there is whole (one cut there is too long to be a code)."""
        pattern: re.Pattern[str] = getattr(_patterns(), kind)
        for match in pattern.finditer(text, start, stop + 100):
            if match.start() > stop or self._budget[kind] <= 0:
                return
            self._budget[kind] -= 1
            yield match

    def _near(self, start: int, stop: int, read: int) -> Iterator[_Candidate]:
        for match in self._read("run", self._behind, max(start, read), stop):
            yield from _split_run(match.group(1), match.start(1) - 1)
        for match in self._read("spaced", self.low, start, stop):
            digits = "".join(match.group(1).split())
            if digits not in "0123456789":  # 1 2 3 4 numbers steps or pages
                yield _Candidate(digits, match.start(1), match.end(1), "spaced")
        for match in self._read("letters", self.text, start, stop):
            kind = _letter_kind(match.group(1))
            if kind is not None:
                yield _Candidate(match.group(1), match.start(1), match.end(1), kind)

    def _windows(self) -> Iterator[Span]:
        """Where a candidate can stand within ``_NEAR`` of one of the first code words, merged,
        in order."""
        window: Span | None = None
        for kw_start, kw_end in itertools.islice(self.words.spans, _MAX_CANDIDATES):
            start, stop = max(0, kw_start - int(_NEAR / 1.5) - 30), kw_end + int(_NEAR)
            if window is not None and start > window[1] + 40:
                yield window
                window = None
            window = (start, stop) if window is None else (window[0], stop)
        if window is not None:
            yield window

    def distance(self, cand: _Candidate) -> float:
        """How far the candidate stands from the nearest word near a code; for a code of
        capitals, from the nearest word that names a code."""
        near = self.words if cand.kind in ("digits", "spaced") else self.code_words
        return near.distance(cand.start, cand.end)

    def alone(self, cand: _Candidate) -> bool:
        """Whether the candidate stands alone on its line (blanks, dashes, colons aside). Each
        look reads only the blanks next to the candidate: text no other candidate reads."""
        if not self._reversed:
            self._reversed = self.low[::-1]
        low, size = self.low, len(self.low)
        before = size - _blanks_end(self._reversed, size - cand.start)
        after = _blanks_end(low, cand.end)
        return low[before - 1 : before] in ("", "\n") and low[after : after + 1] in ("", "\n")

    def label(self, cand: _Candidate) -> str | None:
        """``"labelled"`` when the mail names the number as something else, ``"governed"`` when
        a code word right before that label says what the code is for, else None."""
        label_start = self.labels.get(cand.start)
        if label_start is None:
            after = _patterns().label_after.match(self.low, cand.end, cand.end + 48)
            return None if after is None else "labelled"
        kw_end, distance = self.words.before(label_start)
        if distance <= 30 and not any(ch in self.low[kw_end:label_start] for ch in ".!?\n"):
            return "governed"
        return "labelled"

    def marked(self, cand: _Candidate) -> bool:
        """Whether capitals without a digit are marked outright as the code."""
        kw_end, distance = self.code_words.before(cand.start)
        if distance <= 16 and _patterns().marker_gap.fullmatch(self.low, kw_end, cand.start):
            return True
        return distance <= 100 and self.alone(cand)

    def place_penalty(self, cand: _Candidate, distance: float) -> float:
        """A postal code, a house number or a year: what stands around the number says so."""
        p = _patterns()
        start = max(0, cand.start - 25, int(cand.start - self.words.before(cand.start)[1]))
        penalty = 100.0 if p.state_or_city.search(self.text[start : cand.start]) else 0.0
        if distance > 40 and (
            p.state_or_city.search(self.text[cand.end : cand.end + 14])
            or p.street.match(self.text, cand.end, cand.end + 60)
        ):
            penalty += 60.0
        year = len(cand.code) == 4 and cand.code.isdigit() and 1900 <= int(cand.code) <= 2099
        return penalty + (40.0 if year and distance > 40 else 0.0)


def _ceiling(ctx: _Context, cand: _Candidate, distance: float) -> float:
    """The score before what can only lower it: how near a code word, alone on its line, six
    digits long."""
    score = max(0.0, 100.0 - distance)
    if cand.start in ctx.after_label:
        score += _LABEL_WINS
    if ctx.alone(cand):
        score += 25.0
    if cand.kind in ("digits", "spaced") and len(cand.code) == 6:
        score += 10.0
    return score


def _score(ctx: _Context, cand: _Candidate, distance: float, ceiling: float) -> float | None:
    if cand.kind == "capitals" and not ctx.marked(cand):
        return None
    label = ctx.label(cand)
    if label == "labelled":
        return None
    governed = 40.0 if label == "governed" else 0.0
    return ceiling - governed - ctx.place_penalty(cand, distance)


def _best_code(text: str) -> tuple[float, int, str] | None:
    """The best candidate as (score, minus its position, code): ties go to the first."""
    if not text:
        return None
    ctx = _Context(text)
    best: tuple[float, int, str] | None = None
    for cand in ctx.candidates():
        distance = ctx.distance(cand)
        if cand.kind != "digits" and distance > _NEAR:
            continue
        ceiling = _ceiling(ctx, cand, distance)
        if best is not None and (ceiling, -cand.start) <= best[:2]:
            continue  # cannot beat the best so far
        score = _score(ctx, cand, distance, ceiling)
        if score is not None and score >= 0 and (best is None or (score, -cand.start) > best[:2]):
            best = (score, -cand.start, cand.code)
    return best


def extract_code(
    content: str, pattern: str | re.Pattern[str] | None = None, *, subject: str = ""
) -> str | None:
    """Find the one-time code in a mail.

    Takes time linear in the length of the mail, whatever it holds (a given ``pattern`` aside:
    keeping that one linear is up to its author).

    Args:
        content: The mail's content, plain text or HTML.
        pattern: A regex that overrides the heuristic: its first group, else the whole match,
            searched in the text after HTML reduction, then in the subject.
        subject: The mail's subject; its code wins over the content's only with a better score.

    Returns:
        The code, or ``None``: digits with their groups joined (``"804 291"`` gives
        ``"804291"``), or a code of capitals and digits as the mail spells it (``"KXR-7TQ"``);
        as matched when ``pattern`` is given.
    """
    is_html = looks_like_html(content)
    text = html_to_text(content) if is_html else content
    if pattern is not None:
        for where in (text, subject):
            match = re.search(pattern, where)
            if match is not None:
                return match.group(1) if match.re.groups else match.group(0)
        return None
    found = _best_code(text if is_html else _as_shown(text))  # html_to_text did it
    in_subject = _best_code(_as_shown(subject))
    if in_subject is not None and (found is None or in_subject[0] > found[0]):
        found = in_subject
    return None if found is None else found[2]
