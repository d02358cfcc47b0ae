"""Mask personal data in ticket text before it is stored, logged or modelled.

``mask_pii`` replaces e-mail addresses, URLs, payment cards, bank accounts and
phone numbers by fixed placeholders (``PII_PLACEHOLDERS``). It is a pure
function, independent of ``features.text.clean_text``: the caller decides the
order.

It errs towards masking: a number that might be a phone or an account is
masked. It spares what agents need and what is not personal: dates, times,
amounts, version numbers, error codes and order or ticket references.

How it stays fast: e-mails and links are only searched for when the text holds
"@", "www." or "http"; numbers are found by one cheap scan for digit runs
("spans"), and the exact card, account and phone layouts are only tried on the
few spans long enough to be one (at least six digits). A label just before a
span ("Konto", "Tel.", "order #") decides what its leading number is.

Decimal digits of other scripts ("０３０", "٠٣٠") are rewritten as ASCII digits
first, so they cannot slip past the number rules; that is the one change
``mask_pii`` makes to text that is not personal data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final

__all__ = ["PII_PLACEHOLDERS", "mask_pii"]

_EMAIL: Final[str] = "<EMAIL>"
_URL: Final[str] = "<URL>"
_CARD: Final[str] = "<CARD>"
_ACCOUNT: Final[str] = "<ACCOUNT>"
_PHONE: Final[str] = "<PHONE>"

PII_PLACEHOLDERS: Final[tuple[str, ...]] = (_EMAIL, _URL, _CARD, _ACCOUNT, _PHONE)

_MIN_SPAN_DIGITS: Final[int] = 6  # the fewest any rule below needs
_MIN_LABELLED_ACCOUNT_DIGITS: Final[int] = 6
_MIN_PHONE_DIGITS: Final[int] = 7
_CARD_DIGITS: Final[range] = range(13, 20)
_IBAN_LENGTHS: Final[range] = range(15, 35)

# ---------------------------------------------------------------- text-level patterns

# Starts only where a link starts, not inside an e-mail domain ("jane@www.x.com")
# or another token; trailing sentence punctuation is not part of the link.
_URL_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"(?<![\w@./-])(?:https?://|www\.)[^\s<>\"'`()\[\]{}]*[^\s<>\"'`()\[\]{}.,;:!?]",
    re.IGNORECASE,
)
# An address is found from its "@", which the regex engine jumps to directly;
# a pattern starting with the local part would be tried at every position. The
# local part is then read backwards (see _local_part_start).
# The top-level domain starts with a letter and may hold digits and hyphens
# (punycode: "xn--p1ai").
_EMAIL_DOMAIN: Final[re.Pattern[str]] = re.compile(r"@[\w-]+(?:\.[\w-]+)*\.[^\W\d_][\w-]*[^\W_]")
# Every symbol RFC 5322 allows in a local part ("*@x.ar" is an address), but a
# leading quote, brace, slash, "=" or "|" is more likely the text around it.
_LOCAL_PART_SYMBOLS: Final[str] = "!#$%&'*+-/=?^_`{|}~."
_LOCAL_PART_WRAPPERS: Final[str] = "'`{/=|"
# Compact ("GB29NWBK60161331926819") or in groups of four ("DE89 3704 ...");
# the checksum decides, so product codes of the same shape stay. The word
# boundary is checked after the first letter so the scan can skip ahead fast.
_IBAN_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"[A-Z](?<!\w[A-Z])[A-Z][0-9]{2}"
    r"(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b"
)
# Capitals are common and digits rare: scanning for the check digits first
# and looking back for the country code rules out most texts cheaply.
_IBAN_HINT: Final[re.Pattern[str]] = re.compile(r"[0-9][0-9](?<=[A-Z]{2}[0-9]{2})")
# A run of digits and the separators numbers are written with, holding at
# least _MIN_SPAN_DIGITS digits. It starts on a character class, which lets the
# regex engine skip plain prose quickly; ASCII digits only, as a class scan is
# five times faster than one for \d.
_NUMBER_SPAN: Final[re.Pattern[str]] = re.compile(
    r"[+(0-9](?=(?:[ ()./:+-]*[0-9]){%d})[0-9 ()./:+-]*[0-9)]" % (_MIN_SPAN_DIGITS - 1)
)

# Decimal digits of other scripts ("０３０", "٠٣٠"): the number rules scan for
# ASCII digits only, so these are folded to ASCII first (a class of Unicode
# digits that are not ASCII: everything but non-digits and 0-9).
_NON_ASCII_DIGIT: Final[re.Pattern[str]] = re.compile(r"[^\D0-9]")

# ---------------------------------------------------------------- span-level patterns
# Tried on one span with the character before and after it as context.

# Digits after a decimal point or comma are a fraction ("0.00123456 BTC").
_NOT_A_FRACTION: Final[str] = r"(?<![0-9][.,])"
# Card layouts: contiguous, 4-4-4-4(-3) and Amex/Diners 4-6-5/4-6-4, with one
# consistent separator. No card network number starts with 0 (hex dumps and
# zero padding do). A "+" before it means a phone number, never a card.
_CARD_PATTERN: Final[re.Pattern[str]] = re.compile(
    rf"(?<![\w+]){_NOT_A_FRACTION}(?=[1-9])(?:[0-9]{{13,19}}"
    r"|[0-9]{4}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?:(?P=sep)[0-9]{1,4})?(?:(?P=sep)[0-9]{1,3})?"
    r"|[0-9]{4}(?P<amex_sep>[ -])[0-9]{6}(?P=amex_sep)[0-9]{4,5})"
    r"(?!\w)"
)
# A long bare run is an account unless a country code ("+49 ") makes it part
# of a phone number, which the phone rule then masks whole.
_BARE_LONG_NUMBER_PATTERN: Final[re.Pattern[str]] = re.compile(
    rf"(?<![\w+]){_NOT_A_FRACTION}(?<!\+[0-9] )(?<!\+[0-9]{{2}} )(?<!\+[0-9]{{3}} )[0-9]{{10,}}(?!\w)"
)
# Phone layouts. The lookarounds keep them out of longer tokens, dates
# ("2026-01-05"), versions ("2.3.1"), IP addresses, times and decimals.
_NOT_AFTER: Final[str] = r"(?<![\w+.:/-])"
_NOT_BEFORE: Final[str] = r"(?![\w-]|[.:/][0-9])"
_PHONE_LAYOUTS: Final[dict[str, str]] = {
    "international": (
        rf"(?<![\w+]){_NOT_A_FRACTION}(?:\+|00)[0-9]{{1,3}}(?:[ .-]?(?:\([0-9]{{1,4}}\)|[0-9]{{1,5}})){{1,6}}+"
    ),
    "french": rf"{_NOT_AFTER}0[0-9](?P<fr_sep>[ .])[0-9]{{2}}(?:(?P=fr_sep)[0-9]{{2}}){{3}}",
    "north_american": rf"{_NOT_AFTER}(?:\([0-9]{{3}}\)[ .-]?|[0-9]{{3}}[ .-])[0-9]{{3}}[ .-][0-9]{{4}}",
    "national": rf"{_NOT_AFTER}(?:\(0[0-9]{{1,4}}\)[ ]?|0[0-9]{{1,4}}[ /-]?)[0-9]{{3,}}(?:[ -][0-9]{{2,}})*",
    "local": rf"{_NOT_AFTER}[0-9]{{3}}-[0-9]{{4}}",
}
_PHONE_PATTERN: Final[re.Pattern[str]] = re.compile(
    rf"(?:{'|'.join(_PHONE_LAYOUTS.values())}){_NOT_BEFORE}"
)

# ---------------------------------------------------------------- labels

_REFERENCE_LABELS: Final[frozenset[str]] = frozenset(
    # Order, ticket and invoice references are what agents work with, not
    # personal data. ("case" is missing on purpose: "in case 555-123-4567 ...".)
    "order orders ticket invoice ref reference bestellung bestellnummer auftrag"
    " auftragsnummer rechnung rechnungsnummer ticketnummer commande facture pedido factura".split()
)
_ACCOUNT_LABELS: Final[frozenset[str]] = frozenset(
    "account accounts acct a/c konto kontonummer kontonr kto cuenta compte conta".split()
)
_PHONE_LABELS: Final[frozenset[str]] = frozenset(
    "phone tel telephone telefon telefonnummer mobile mobil mobilnummer cell fax handy"
    " tél téléphone portable teléfono telefono móvil celular".split()
)
# Words allowed between a label and its number: "order no. 123", "compte n° 123".
_NUMBER_WORDS: Final[frozenset[str]] = frozenset(
    "no nr number num nummer número numéro n° nº id".split()
)
_LABEL_WINDOW: Final[int] = 40
_LABEL_PUNCTUATION: Final[str] = " \t:#.-"
_LEADING_NUMBER: Final[dict[str, re.Pattern[str]]] = {
    "reference": re.compile(r"[0-9][0-9-]*"),
    "account": re.compile(r"[0-9]+(?:[ -][0-9]+)*"),
    "phone": re.compile(r"\+?\(?[0-9][0-9 ()./-]*[0-9]"),
}


# ---------------------------------------------------------------- API


def mask_pii(text: str) -> str:
    """``text`` with personal data replaced by the placeholders in ``PII_PLACEHOLDERS``."""
    # A replacement changes its neighbours' context: the patterns refuse to
    # start inside a word, and "0@x.com0@x.com" only shows its second address
    # once the first became "<EMAIL>". Repeating until nothing changes makes
    # the result a fixed point, hence idempotent. It ends because every
    # replacement removes a digit, "@" or link prefix and no placeholder adds
    # one (digit folding happens in the first pass only); text without
    # personal data takes a single pass.
    while True:
        masked = _mask_once(text)
        if masked == text:
            return masked
        text = masked


def _mask_once(text: str) -> str:
    if not text.isascii() and _NON_ASCII_DIGIT.search(text):
        text = _NON_ASCII_DIGIT.sub(_ascii_digit, text)
    for step in _MASKING_STEPS:
        text = step(text)
    return text


# ---------------------------------------------------------------- steps


def _mask_urls(text: str) -> str:
    # Every link holds "://" or starts with "www." (written capitalised at most).
    if "://" not in text and "www." not in text and "Www." not in text and "WWW." not in text:
        return text
    return _URL_PATTERN.sub(_URL, text)


def _mask_emails(text: str) -> str:
    if "@" not in text:
        return text
    pieces: list[str] = []
    cursor = 0
    for domain in _EMAIL_DOMAIN.finditer(text):
        start = _local_part_start(text, domain.start(), cursor)
        if start < domain.start():
            pieces += (text[cursor:start], _EMAIL)
            cursor = domain.end()
    return "".join((*pieces, text[cursor:])) if pieces else text


def _local_part_start(text: str, at: int, floor: int) -> int:
    """Where the local part ending at ``at`` (the "@") starts, not before ``floor``."""
    start = at
    while start > floor and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_PART_SYMBOLS):
        start -= 1
    unwrapped = start
    while unwrapped < at - 1 and text[unwrapped] in _LOCAL_PART_WRAPPERS:
        unwrapped += 1
    return unwrapped


def _mask_ibans(text: str) -> str:
    return _IBAN_PATTERN.sub(_replace_iban, text) if _IBAN_HINT.search(text) else text


def _mask_numbers(text: str) -> str:
    return _NUMBER_SPAN.sub(_replace_number_span, text)


# Order matters where one kind of data contains another:
# - URLs first: a link may carry an e-mail ("?user=jane@x.com", "ftp://jane@host")
#   or long ids; masking it whole avoids half-masked "<URL><EMAIL>" leftovers.
# - E-mails before numbers: "4915112345678@sms.example.com" must not become
#   "<PHONE>@sms.example.com", which would leak the rest of the address.
# - IBANs before the other numbers: their digit body would otherwise be masked
#   piecemeal, leaving the country and bank code readable.
# Inside a number span (see _apply_number_rules): cards before accounts and
# phones, as "4111 1111 1111 1111" also fits the phone layouts and the
# long-number rule, and the Luhn check claims real cards first; then long bare
# runs before phones, as "0301234567" fits a phone layout but a run of ten or
# more digits is an account here.
_MASKING_STEPS: Final[tuple[Callable[[str], str], ...]] = (
    _mask_urls,
    _mask_emails,
    _mask_ibans,
    _mask_numbers,
)


# ---------------------------------------------------------------- number spans


def _replace_number_span(match: re.Match[str]) -> str:
    span = match.group()
    if _count_digits(span) < _MIN_SPAN_DIGITS:
        return span
    text, start, end = match.string, match.start(), match.end()
    before, after = text[start - 1 : start], text[end : end + 1]
    label = _label_before(text[max(0, start - _LABEL_WINDOW) : start])
    leading = _LEADING_NUMBER[label].match(span) if label else None
    if leading is None:
        return _mask_unlabelled_numbers(before, span, after)
    head, rest = leading.group(), span[leading.end() :]
    return _replace_labelled_number(label, head) + _mask_unlabelled_numbers(head[-1], rest, after)


def _label_before(preceding: str) -> str | None:
    """What the words just before a number say it is: "reference", "account", "phone" or None."""
    # "-" separates words here, so "Konto-Nr." reads as "konto nr".
    words = preceding.rstrip(_LABEL_PUNCTUATION).lower().replace("-", " ").split()
    if len(words) >= 2 and words[-1] in _NUMBER_WORDS:
        words.pop()
    word = words[-1].rstrip(_LABEL_PUNCTUATION).lstrip("([\"'") if words else ""
    if word in _ACCOUNT_LABELS:
        return "account"
    if word in _PHONE_LABELS:
        return "phone"
    if word in _REFERENCE_LABELS or preceding.rstrip(" \t").endswith("#"):
        return "reference"
    return None


def _replace_labelled_number(label: str, number: str) -> str:
    if label == "reference":
        # A reference label does not make a card number harmless.
        return _CARD_PATTERN.sub(_replace_card, number)
    digits = _count_digits(number)
    if label == "account" and digits >= _MIN_LABELLED_ACCOUNT_DIGITS:
        return _ACCOUNT
    if label == "phone" and digits >= _MIN_PHONE_DIGITS:
        return _PHONE
    return number


def _mask_unlabelled_numbers(before: str, span: str, after: str) -> str:
    """Mask cards, long account numbers and phones in ``span``.

    ``before`` and ``after`` are the characters around it, there only for the
    patterns' lookarounds ("x555-123-4567" is no phone number). The patterns
    cannot take them into a match (the span holds every adjacent digit, "+"
    and "("), so they are cut off again; the check is a safety net.
    """
    if _count_digits(span) < _MIN_SPAN_DIGITS:
        return span
    masked = _apply_number_rules(before + span + after)
    if masked.startswith(before) and masked.endswith(after):
        return masked[len(before) : len(masked) - len(after)]
    return _apply_number_rules(span)


def _apply_number_rules(text: str) -> str:
    text = _CARD_PATTERN.sub(_replace_card, text)
    text = _BARE_LONG_NUMBER_PATTERN.sub(_ACCOUNT, text)
    return _PHONE_PATTERN.sub(_replace_phone, text)


# ---------------------------------------------------------------- replacements


def _ascii_digit(match: re.Match[str]) -> str:
    return str(unicodedata.decimal(match.group()))


def _replace_iban(match: re.Match[str]) -> str:
    return _mask_longest_valid_prefix(match.group(), _is_valid_iban, _ACCOUNT)


def _replace_card(match: re.Match[str]) -> str:
    return _mask_longest_valid_prefix(match.group(), _is_card_number, _CARD)


def _replace_phone(match: re.Match[str]) -> str:
    number = match.group()
    return _PHONE if _count_digits(number) >= _MIN_PHONE_DIGITS else number


def _mask_longest_valid_prefix(candidate: str, is_valid: Callable[[str], bool], placeholder: str) -> str:
    """Mask the longest space/dash-delimited prefix of ``candidate`` that ``is_valid``.

    The patterns may take one group too many ("4111 1111 1111 1111 2 items");
    dropping trailing groups until the checksum holds recovers the number.
    """
    prefix = candidate
    while True:
        if is_valid(prefix.replace(" ", "").replace("-", "")):
            return placeholder + candidate[len(prefix) :]
        cut = max(prefix.rfind(" "), prefix.rfind("-"))
        if cut < 0:
            return candidate
        prefix = prefix[:cut]


# ---------------------------------------------------------------- checksums


def _is_card_number(digits: str) -> bool:
    return len(digits) in _CARD_DIGITS and _passes_luhn(digits)


def _passes_luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_valid_iban(compact: str) -> bool:
    """ISO 13616 check: country and check digits moved to the end, read base 36, mod 97 == 1."""
    if len(compact) not in _IBAN_LENGTHS or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _count_digits(text: str) -> int:
    return sum(map(str.isdigit, text))
