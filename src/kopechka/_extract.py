"""Pulling the one-time code and the links out of a verification mail.

Pure functions over strings: no I/O, no models, never an exception for any input string.

The code heuristic, in order:

1. HTML is reduced to text (entities decoded, block tags as line breaks, ``style``, ``script``
   and ``head`` dropped).
2. Spans that hold digits but no code are blanked: links, e-mail addresses, colours, dates, times,
   prices, percentages, phone numbers, numbers after ``#`` or ``№``.
3. Candidates are 4-8 digits standing alone, or written in equal groups (``804 291``, ``137-954``).
   A run of groups of more than 8 digits is one longer number (a phone, a card), never a code.
4. Each candidate is scored: close to a word like *code*, *код*, *OTP*, *PIN* scores highest;
   alone on its line, or six digits long, scores a little; near *order*, *invoice*, *заказ*
   or looking like a year or a postal code scores lower. The best score wins; ties go to the first.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["extract_code", "extract_links", "html_to_text", "looks_like_html"]

_HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|<!--|<!DOCTYPE", re.IGNORECASE)
_DROPPED = frozenset({"style", "script", "head", "title", "noscript", "template"})
_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "td", "th", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5",
     "h6", "hr", "section", "article", "header", "footer", "center", "blockquote", "pre", "body"}
)  # fmt: skip
_URL = re.compile(r"https?://[^\s<>\"'\[\]{}|\\^`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\""


def looks_like_html(text: str) -> bool:
    """Return whether ``text`` appears to be HTML rather than plain text."""
    return _HTML_TAG.search(text) is not None


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            href = dict(attrs).get("href")
            if href and href.strip().lower().startswith(("http://", "https://")):
                self.links.append(href.strip())

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)
            self.links.extend(_urls_in(data))


def _parse_html(text: str) -> _TextParser:
    parser = _TextParser()
    try:
        parser.feed(text)
        parser.close()
    except Exception:
        parser.parts.append(re.sub(r"<[^>]*>", " ", text))
    return parser


def html_to_text(text: str) -> str:
    """Reduce HTML to readable text: entities decoded, tags as spaces or line breaks.

    Args:
        text: An HTML document or fragment.

    Returns:
        The text, one block per line, runs of blanks folded.
    """
    raw = "".join(_parse_html(text).parts).replace("\xa0", " ")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in raw.split("\n"))
    return "\n".join(line for line in lines if line)


def _urls_in(text: str) -> list[str]:
    found = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        while url.endswith(")") and url.count(")") > url.count("("):
            url = url[:-1].rstrip(_TRAILING)
        found.append(html.unescape(url))
    return found


def extract_links(content: str) -> list[str]:
    """Return the http(s) links of a mail in order of appearance, without duplicates.

    Args:
        content: The mail's content, plain text or HTML (``href`` attributes count).

    Returns:
        The links, HTML entities decoded.
    """
    links = _parse_html(content).links if looks_like_html(content) else _urls_in(content)
    return list(dict.fromkeys(links))


# --- the code heuristic -------------------------------------------------------------------------

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t|tember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|январ[яь]|феврал[яь]|марта?|апрел[яь]|ма[яй]|июн[яь]"
    r"|июл[яь]|августа?|сентябр[яь]|октябр[яь]|ноябр[яь]|декабр[яь]"
)
_CURRENCY = r"[$€£¥₽₴₸]|руб(?:\.|лей|ля|ль)?|р\.|usd|eur|rub|gbp|dollars?|euros?"
_BLANKED_SOURCE = "|".join(
    (
        r"https?://\S+|www\.\S+",  # links
        r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail addresses
        r"#[0-9a-f]{3,8}\b|\brgba?\([^)]*\)",  # colours
        r"(?:#|№|\bno\.|\bnr\.)\s?[\w-]+",  # numbered things: order #123, № 45
        r"\b\d{4}[-./]\d{1,2}[-./]\d{1,2}(?!\d)",  # dates: 2024-01-31
        r"\b\d{1,2}[-./]\d{1,2}[-./]\d{2,4}(?!\d)",  # 31.01.2024, 1/31/24
        rf"\b\d{{1,2}}\s?(?:{_MONTHS})\b\.?(?:\s?\d{{4}}(?!\d))?",  # 1 января 2024
        rf"\b(?:{_MONTHS})\b\.?\s?\d{{1,2}}(?!\d)(?:st|nd|rd|th)?,?(?:\s?\d{{4}}(?!\d))?",
        r"\b\d{1,2}:\d{2}(?::\d{2})?(?!\d)(?:\s?[ap]\.?m\.?)?",  # times
        rf"(?<!\w)(?:{_CURRENCY})\s?\d[\d,.]*(?:[ \xa0]\d{{3}}(?!\d))*",  # prices: $5, ₽ 1 500
        rf"\d[\d,.]*(?:[ \xa0]\d{{3}}(?!\d))*\s?(?:{_CURRENCY})(?!\w)",  # 150.75 руб
        r"\d+(?:[.,]\d+)?\s?%",  # percentages
        r"\+\d[\d ().-]{6,}\d",  # phones: +7 (999) 123-45-67
        r"\(\d{3,5}\)\s?\d[\d -]{4,}\d|\b\d{3}[-.]\d{3}[-.]\d{4}\b",  # (800) 555-35-35
        r"(?:©|\(c\)|copyright)\s?\d{4}(?:\s?[-–]\s?\d{4})?",  # copyright years
    )
)
_RUN_SOURCE = r"(?<![\w/@])(?<!\d[.,:-])(\d+(?:[ -]\d+)*)(?!\w|[.,/:]\d)"
_KEYWORDS_SOURCE = (
    r"\b(?:code|codes|otp|pin|passcode|pass code|one[- ]time|verification|verify|confirm\w*|"
    r"security|token|код\w*|подтвержд\w*|парол\w*|одноразов\w*)\b"
)
_DISTRACTORS_SOURCE = (
    r"\b(?:order|invoice|ticket|account|acct|ref|reference|id|tracking|zip|postal|street|st\.|ave|"
    r"suite|apt|box|заказ\w*|сч[её]т\w*|индекс|ул\.|улица|дом|д\.|кв\.|год[ау]?|г\.|year)"
    r"(?!\w)"
)
_STATE_OR_CITY_SOURCE = r"\b[A-Z]{2} $|^,\s?[A-ZА-Я][a-zа-яё]+\b"


@dataclass(frozen=True)
class _Patterns:
    blanked: re.Pattern[str]
    run: re.Pattern[str]
    keywords: re.Pattern[str]
    distractors: re.Pattern[str]
    state_or_city: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    """The heuristic's regexes, compiled on first use so that importing kopechka stays cheap."""
    return _Patterns(
        blanked=re.compile(_BLANKED_SOURCE, re.IGNORECASE),
        run=re.compile(_RUN_SOURCE),
        keywords=re.compile(_KEYWORDS_SOURCE, re.IGNORECASE),
        distractors=re.compile(_DISTRACTORS_SOURCE, re.IGNORECASE),
        state_or_city=re.compile(_STATE_OR_CITY_SOURCE),
    )


@dataclass(frozen=True)
class _Candidate:
    code: str
    start: int
    end: int


def _candidates(text: str) -> list[_Candidate]:
    found = []
    for match in _patterns().run.finditer(text):
        found.extend(_split_run(match.group(1), match.start(1)))
    return found


def _split_run(run: str, start: int) -> list[_Candidate]:
    groups = re.split(r"[ -]", run)
    digits = "".join(groups)
    if len(groups) == 1:
        return [_Candidate(digits, start, start + len(run))] if 4 <= len(digits) <= 8 else []
    uniform = len({len(g) for g in groups}) == 1 and 2 <= len(groups[0]) <= 4
    if uniform and 4 <= len(digits) <= 8:
        return [_Candidate(digits, start, start + len(run))]
    if "-" in run or len(digits) > 8:
        return []  # one longer number: a phone, a card, an order reference
    out, offset = [], start
    for group in run.split(" "):
        if 4 <= len(group) <= 8:
            out.append(_Candidate(group, offset, offset + len(group)))
        offset += len(group) + 1
    return out


def _keyword_distance(cand: _Candidate, keywords: list[re.Match[str]]) -> float:
    best = 999.0
    for kw in keywords:
        if kw.end() <= cand.start:
            best = min(best, cand.start - kw.end())
        elif kw.start() >= cand.end:
            best = min(best, (kw.start() - cand.end) * 1.5)  # "code: N" reads better than "N code"
    return best


def _score(text: str, cand: _Candidate, keywords: list[re.Match[str]]) -> float:
    distance = _keyword_distance(cand, keywords)
    score = max(0.0, 100.0 - distance)
    line_start = text.rfind("\n", 0, cand.start) + 1
    line_end = text.find("\n", cand.end)
    line = text[line_start : len(text) if line_end < 0 else line_end]
    if line.strip(" -:.") == text[cand.start : cand.end]:
        score += 25.0
    if len(cand.code) == 6:
        score += 10.0
    before = text[max(0, cand.start - 25) : cand.start]
    p = _patterns()
    before = before[max((m.end() for m in p.keywords.finditer(before)), default=0) :]
    after = text[cand.end : cand.end + 14]
    if (
        p.distractors.search(before)
        or p.distractors.search(after)
        or p.state_or_city.search(before)
    ):
        score -= 60.0
    if p.state_or_city.search(after) and distance > 40:
        score -= 60.0
    if len(cand.code) == 4 and 1900 <= int(cand.code) <= 2099 and distance > 40:
        score -= 40.0
    return score


def _best_code(text: str) -> str | None:
    p = _patterns()
    masked = p.blanked.sub(lambda m: " " * len(m.group(0)), text)
    keywords = list(p.keywords.finditer(masked))
    scored = [(_score(masked, c, keywords), -c.start, c.code) for c in _candidates(masked)]
    best = max((s for s in scored if s[0] >= 0), default=None)
    return None if best is None else best[2]


def extract_code(
    content: str, pattern: str | re.Pattern[str] | None = None, *, subject: str = ""
) -> str | None:
    """Find the one-time code in a mail.

    Args:
        content: The mail's content, plain text or HTML.
        pattern: A regex that overrides the heuristic: its first group, else the whole match,
            searched in the text after HTML reduction.
        subject: The mail's subject, searched when the content holds no code.

    Returns:
        The code (digits only, groups joined; as matched when ``pattern`` is given), or ``None``.
    """
    text = html_to_text(content) if looks_like_html(content) else content
    if pattern is not None:
        match = re.search(pattern, text)
        if match is None:
            return None
        return match.group(1) if match.re.groups else match.group(0)
    return _best_code(text) or (_best_code(subject) if subject else None)
