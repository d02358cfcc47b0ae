"""Turn raw ticket subjects and bodies into clean text for the models.

``clean_text`` removes what carries no signal about the ticket itself (HTML
markup, quoted earlier messages, signatures, invisible characters) and keeps
everything that does: case and accents stay, because lower-casing is the
vectorizer's job and tickets are multilingual.

The steps run in a fixed order, each for a reason:

1. HTML first, so block tags become line breaks the later line-based rules see.
2. Unicode normalisation before the reply rules, so e.g. a decomposed "é" in
   "a écrit" or a non-breaking space in "wrote:" still matches.
3. Reply headers, quoted lines, then signatures; each is skipped when it would
   leave nothing (a ticket that is only a forwarded quote is still a ticket).
4. Whitespace is collapsed last, because the rules above need the line breaks.

Everything is a pure function of its input; regexes are compiled once here.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from typing import Final

__all__ = ["clean_text", "combine_subject_body"]

# Placeholders written by features.masking. Listed here (not imported) so this
# module stays dependency-free; the tests check both lists agree. They look like
# tags, so the HTML rules must leave them alone explicitly.
_PROTECTED_PLACEHOLDERS: Final[tuple[str, ...]] = ("EMAIL", "URL", "CARD", "ACCOUNT", "PHONE")
_NOT_A_PLACEHOLDER: Final[str] = "(?!(?:%s)>)" % "|".join(_PROTECTED_PLACEHOLDERS)

# ---------------------------------------------------------------- HTML

# Only real HTML element names count as tags. That keeps plain-text uses of
# "<" intact ("a < b", "press <Enter>") and dataset placeholders such as
# "<name>" or "<tel_num>" that sit next to "<br>" in exported tickets.
_BLOCK_TAGS: Final[str] = (
    "address|article|aside|blockquote|br|center|dd|div|dl|dt|footer|form|h[1-6]|header"
    "|hr|li|main|nav|ol|p|pre|section|table|tbody|tfoot|thead|title|tr|ul"
)
_CELL_TAGS: Final[str] = "td|th"
_INLINE_TAGS: Final[str] = (
    "a|abbr|b|big|body|caption|cite|code|col|colgroup|del|em|font|head|html|i|img|input"
    "|ins|kbd|label|link|mark|meta|s|small|span|strike|strong|sub|sup|tt|u|var|wbr"
    # Office and VML namespaced tags (<o:p>, <v:shape>) that Outlook emits.
    r"|[a-z]+:[\w-]+"
)
_ANY_TAG_NAME: Final[str] = f"{_BLOCK_TAGS}|{_CELL_TAGS}|{_INLINE_TAGS}"

# Detection is stricter than stripping: attributes must have values, so the
# plain-text "if a<b and c>d" is not mistaken for a <b> tag.
_HTML_HINT: Final[re.Pattern[str]] = re.compile(
    rf"<(?:{_NOT_A_PLACEHOLDER}/?(?:{_ANY_TAG_NAME})"
    r"""(?:\s+[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))*\s*/?>|!--|!doctype)""",
    re.IGNORECASE,
)
# Content that is never shown to the reader.
_INVISIBLE_ELEMENTS: Final[re.Pattern[str]] = re.compile(
    r"<(script|style|head)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<!doctype[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
# Quoted attribute values may hold "<" and ">": masking the HTML source first
# turns href="mailto:jane@x.com" into href="mailto:<EMAIL>", and the whole tag
# must still go.
_ATTRIBUTES: Final[str] = r"""(?:[^<>"']+|"[^"]*"|'[^']*')*+"""
_BLOCK_TAG: Final[re.Pattern[str]] = re.compile(
    rf"<{_NOT_A_PLACEHOLDER}/?(?:{_BLOCK_TAGS})\b{_ATTRIBUTES}>", re.IGNORECASE
)
_CELL_TAG: Final[re.Pattern[str]] = re.compile(rf"</?(?:{_CELL_TAGS})\b{_ATTRIBUTES}>", re.IGNORECASE)
_INLINE_TAG: Final[re.Pattern[str]] = re.compile(
    rf"<{_NOT_A_PLACEHOLDER}/?(?:{_INLINE_TAGS})\b{_ATTRIBUTES}>", re.IGNORECASE
)
# In plain text, unescape only complete entities: html.unescape also expands
# legacy entities without ";", which would turn "&notice" into "¬ice".
_COMPLETE_ENTITY: Final[re.Pattern[str]] = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")

# ---------------------------------------------------------------- unicode

_ZERO_WIDTH_AND_FORMAT: Final[str] = (
    "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
_CONTROL_CHARS: Final[str] = "".join(
    chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n"
)
_CHAR_REPLACEMENTS: Final[dict[int, str | None]] = {
    **{ord(c): None for c in _ZERO_WIDTH_AND_FORMAT + _CONTROL_CHARS},
    # Line-like separators keep their meaning for the line-based rules.
    **{ord(c): "\n" for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"},
    **{ord(c): "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2035"},
    **{ord(c): '"' for c in "\u201c\u201d\u201e\u201f\u2033\u2036"},
    **{ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d"},
}
_CRLF: Final[str] = "\r\n"
# str.translate costs a dict lookup per character; most tickets contain none of
# these characters, and a character-class search finds that out much faster.
_NEEDS_REPLACEMENT: Final[re.Pattern[str]] = re.compile(
    "[%s]" % re.escape("".join(chr(code) for code in _CHAR_REPLACEMENTS))
)

# ---------------------------------------------------------------- replies

# Each alternative matches the header line a mail client writes above the
# message it quotes; everything from it on is the older conversation. The
# "... wrote:" forms may wrap over up to three lines ("On ..., Jane <\njane@x.com>
# wrote:") and must end their line, so "On Monday IT wrote: reboot" is content.
_WRAPPED: Final[str] = r"[^\n]{0,300}?(?:\n[^\n]{0,300}?){0,2}?"
_WROTE_INTRO: Final[str] = (
    rf"On\s{_WRAPPED}\bwrote"  # English
    rf"|Am\s{_WRAPPED}\bschrieb\b[^\n]{{0,200}}?"  # German: the sender may follow
    rf"|Le\s{_WRAPPED}\ba\s+écrit"  # French
    rf"|El\s{_WRAPPED}\bescribió"  # Spanish
    rf"|Em\s{_WRAPPED}\bescreveu"  # Portuguese
    rf"|Il\s{_WRAPPED}\bha\s+scritto"  # Italian
    rf"|Op\s{_WRAPPED}\bschreef\b[^\n]{{0,200}}?"  # Dutch
)
_ORIGINAL_MESSAGE: Final[str] = (
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Mensaje original|Mensagem original|Messaggio originale)\s*-{2,}"
)
# Outlook's block: a "From: ..." line followed by a "Sent: ..." line.
_OUTLOOK_FROM_SENT: Final[str] = (
    r"(?:From|Von|De|Da|Van)[ \t]*:[^\n]*\n[ \t]*"
    r"(?:Sent|Gesendet|Envoyé|Enviado(?: el)?|Enviada(?: em)?|Inviato|Verzonden|Date|Datum|Fecha)[ \t]*:"
)
_REPLY_HEADER: Final[re.Pattern[str]] = re.compile(
    rf"^[ \t]*(?:(?:{_WROTE_INTRO})\s?:[ \t]*$|{_ORIGINAL_MESSAGE}|{_OUTLOOK_FROM_SENT})",
    re.MULTILINE | re.IGNORECASE,
)

# ---------------------------------------------------------------- signatures

_SIGNATURE_DELIMITER: Final[re.Pattern[str]] = re.compile(r"^-- ?$", re.MULTILINE)
_SIGN_OFF_PHRASES: Final[str] = (
    # English
    "best regards|kind regards|warm regards|warmest regards|regards|best wishes|best"
    "|many thanks|thanks in advance|thanks a lot|thanks again|thanks|thank you(?: very much)?"
    "|cheers|sincerely|yours sincerely|yours truly|yours faithfully"
    # German
    "|mit freundlichen grü(?:ß|ss)en|mit freundlichem gru(?:ß|ss)|freundliche grü(?:ß|ss)e"
    "|viele grü(?:ß|ss)e|beste grü(?:ß|ss)e|liebe grü(?:ß|ss)e|grü(?:ß|ss)e|gru(?:ß|ss)|mfg"
    "|vielen dank|danke"
    # French
    "|cordialement|bien cordialement|bien à vous|salutations|merci d'avance|merci beaucoup|merci"
    # Spanish, Portuguese, Italian, Dutch
    "|saludos cordiales|un saludo|saludos|atentamente|muchas gracias|gracias"
    "|atenciosamente|cumprimentos|obrigad[oa]|cordiali saluti|distinti saluti|grazie"
    "|met vriendelijke groet"
)
# A sign-off line is the phrase alone, or followed by a short name after a
# comma ("Thanks, Jane"); "Thanks, I tried that." is content and stays. The
# name is matched case-sensitively: capitals are what tell a name from a sentence.
_NAME: Final[str] = r"[A-ZÀ-ÖØ-Þ][\w.'-]*(?:[ \t]+[A-ZÀ-ÖØ-Þ][\w.'-]*){0,2}"
# Mail app footers ("Sent from my iPhone", "Von meinem iPhone gesendet") name
# a device or app; "Sent from the warehouse on Monday" is content.
_MAIL_APP_FOOTER: Final[str] = (
    r"(?:(?:sent from(?: my)?|gesendet von(?: meinem)?|von meinem|envoyé de(?: mon)?|enviado desde(?: mi)?"
    r"|enviado do(?: meu)?|inviato da(?:l mio)?)[ \t]+"
    r"(?:iphone|ipad|android|samsung|galaxy|smartphone|mobile|handy|blackberry|huawei|xiaomi|pixel"
    r"|tablet|outlook|mail|yahoo|gmail|proton\w*)|get outlook)\b[^\n]{0,40}"
)
_SIGN_OFF_LINE: Final[re.Pattern[str]] = re.compile(
    rf"[ \t]*(?:(?:{_SIGN_OFF_PHRASES})[ \t]*[,.!:;]*(?:[ \t]*(?-i:{_NAME}))?[ \t]*[,.!]*|{_MAIL_APP_FOOTER})"
    r"[ \t]*$",
    re.IGNORECASE,
)
_SIGN_OFF_SEARCH_LINES: Final[int] = 6
# Longer lines are prose; skipping them saves the regex on most tails.
_MAX_SIGN_OFF_LENGTH: Final[int] = 100


def clean_text(text: str | float | None) -> str:
    """Clean a raw subject or body; ``""`` for a missing value (None, NaN, NA).

    Case and accents are kept; the result is one line with single spaces.
    """
    raw = _as_text(text)
    if not raw:
        return ""
    body = _normalise_unicode(_strip_html(raw))
    for rule in _BODY_RULES:
        body = _unless_empty(rule, body)
    return _collapse_whitespace(body)


def combine_subject_body(subject: str | float | None, body: str | float | None) -> str:
    """The model's text: cleaned subject and body joined by ". ", skipping empty parts."""
    return ". ".join(part for part in (clean_text(subject), clean_text(body)) if part)


def _as_text(value: object) -> str:
    """The value as a str; "" for None and pandas/numpy missing markers (NaN, NA, NaT)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        if value != value:  # NaN and NaT are the only values unequal to themselves
            return ""
    except TypeError:  # pandas.NA refuses to be a bool: it is missing too
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _strip_html(text: str) -> str:
    text = text.replace(_CRLF, "\n")
    if "<" not in text or not _HTML_HINT.search(text):
        return _COMPLETE_ENTITY.sub(_unescape_match, text) if "&" in text else text
    text = _INVISIBLE_ELEMENTS.sub("", text)
    # Source line breaks mean nothing in an HTML document (a browser collapses
    # them); block tags break its lines, which the reply and signature rules
    # need. Text with only inline tags or comments (a Markdown issue with an
    # <img>) keeps its own line breaks.
    if _BLOCK_TAG.search(text):
        text = _collapse_whitespace(text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _CELL_TAG.sub(" ", text)
    text = _INLINE_TAG.sub("", text)
    return html.unescape(text)


def _unescape_match(match: re.Match[str]) -> str:
    return html.unescape(match.group())


def _normalise_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.translate(_CHAR_REPLACEMENTS) if _NEEDS_REPLACEMENT.search(text) else text


def _collapse_whitespace(text: str) -> str:
    # str.split() splits on exactly the characters str.isspace() accepts, and
    # runs at C speed: several times faster than a regex substitution.
    return " ".join(text.split())


def _unless_empty(rule: Callable[[str], str], text: str) -> str:
    """Apply ``rule`` unless it would remove everything; then keep ``text`` as it was."""
    result = rule(text)
    return result if result.strip() else text


def _cut_at_reply_header(text: str) -> str:
    # Every header form holds ":" or "--"; most tickets hold neither, and
    # "in" is far cheaper than a line-anchored regex search.
    if ":" not in text and "--" not in text:
        return text
    match = _REPLY_HEADER.search(text)
    return text[: match.start()] if match else text


def _drop_quoted_lines(text: str) -> str:
    if ">" not in text:
        return text
    lines = text.split("\n")
    kept = [line for line in lines if not line.lstrip(" \t").startswith(">")]
    return text if len(kept) == len(lines) else "\n".join(kept)


def _cut_at_signature_delimiter(text: str) -> str:
    if "--" not in text:
        return text
    match = _SIGNATURE_DELIMITER.search(text)
    return text[: match.start()] if match else text


def _cut_at_sign_off(text: str) -> str:
    """Cut at the earliest sign-off among the last few non-empty lines."""
    # Splitting only the end keeps long tickets cheap; blank lines are allowed
    # for, as signatures are often spaced out.
    lines = text.rsplit("\n", 2 * _SIGN_OFF_SEARCH_LINES)
    tail = [i for i, line in enumerate(lines) if line and not line.isspace()][-_SIGN_OFF_SEARCH_LINES:]
    for index in tail:
        line = lines[index]
        if len(line) <= _MAX_SIGN_OFF_LENGTH and _SIGN_OFF_LINE.match(line):
            return "\n".join(lines[:index])
    return text


# Reply header first: it removes the quoted history in one cut, so the ">"
# rule only handles answers written between quoted lines. Signatures last, so
# they are searched for in the customer's own message, not in the quote.
_BODY_RULES: Final[tuple[Callable[[str], str], ...]] = (
    _cut_at_reply_header,
    _drop_quoted_lines,
    _cut_at_signature_delimiter,
    _cut_at_sign_off,
)
