"""Pure: the numbers the built-in redactor replaces (see `pii`): IBANs, payment cards, phones.

One scan finds the runs of digits and separators that could hold seven digits or more (the
shortest of these); each run is then read by the specific patterns, with the text around it in
view for their boundaries. Ordinary numbers (dates, amounts, versions, order ids, timestamps)
either never make such a run or fail every check: a card needs a network's leading digits and
the Luhn check, an IBAN its country's length and mod-97 check, a phone number a phone's shape.
"""

from __future__ import annotations

import re

PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"

Spans = list[tuple[int, int, str]]

# ---- IBANs --------------------------------------------------------------------------------

# ISO 13616 registry: country -> IBAN length
_IBAN_LENGTHS = {
    **dict.fromkeys(("NO",), 15),
    **dict.fromkeys(("BE",), 16),
    **dict.fromkeys(("DK", "FI", "FO", "GL", "NL", "SD", "FK"), 18),
    **dict.fromkeys(("MK", "SI"), 19),
    **dict.fromkeys(("AT", "BA", "EE", "KZ", "LT", "LU", "XK", "MN"), 20),
    **dict.fromkeys(("CH", "HR", "LI", "LV"), 21),
    **dict.fromkeys(("BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"), 22),
    **dict.fromkeys(("AE", "GI", "IL", "IQ", "TL", "OM", "SO"), 23),
    **dict.fromkeys(("AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"), 24),
    **dict.fromkeys(("LY", "PT", "ST"), 25),
    **dict.fromkeys(("IS", "TR"), 26),
    **dict.fromkeys(("FR", "GR", "IT", "MC", "MR", "SM", "BI", "DJ"), 27),
    **dict.fromkeys(("AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV", "NI"), 28),
    **dict.fromkeys(("BR", "EG", "PS", "QA", "UA"), 29),
    **dict.fromkeys(("JO", "KW", "MU", "YE"), 30),
    **dict.fromkeys(("MT", "SC"), 31),
    **dict.fromkeys(("LC",), 32),
    **dict.fromkeys(("RU",), 33),
}
# Capitals only: lowercase would let words like "at10" start one (then only the checksum, one
# chance in 97, would keep ordinary text apart).
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IBAN_REACH = 12  # characters from an IBAN's start to its first run of digits (a bank code of letters)


def _ibans(text: str, start: int, end: int, spans: Spans) -> None:
    """Each IBAN between `start` and `end`: the match may run on into a following word of
    capitals and digits, so the IBAN is its country's length of characters from the start,
    ending where a group ends."""
    for match in _IBAN.finditer(text, start, end):
        found = match.group()
        length = _IBAN_LENGTHS.get(found[:2])
        if length is None:
            continue
        seen = 0
        stop = -1
        for i, char in enumerate(found):
            if char != " ":
                seen += 1
                if seen == length:
                    stop = i + 1
                    break
        if stop < 0 or (stop < len(found) and found[stop] != " "):
            continue
        compact = found[:stop].replace(" ", "")
        digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
        if int(digits) % 97 == 1:
            spans.append((match.start(), match.start() + stop, IBAN))


# ---- payment cards and phone numbers ---------------------------------------------------------

# A run that could hold a card, a phone number or an IBAN's digits: digits and separators, seven
# characters or more from a digit to a digit, starting where a number does. An ISO date
# (2024-01-15) is no such run: it is the most common one in text, and holds none of them. A `+`
# or `(` before the run is taken in afterwards.
#
# The scan runs over a copy of the text as Latin-1 bytes (one byte a character, so indices are
# the text's; anything else a `?`) with every digit turned into `0`: the pattern then starts
# with one literal character, which the engine finds as fast as `str.find`, where a character
# class costs it ~50 instructions a character of text.
_RUN = re.compile(rb"0(?<!00)(?!000-00-00(?!0))[0 ()./\-]{5,}0")
_ZEROS = bytes.maketrans(b"123456789", b"000000000")

# 13 to 19 digits, bare or in a card's groups (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4), one separator
_CARD = re.compile(
    r"(?<![\w.,+\-])(?:[0-9]{13,19}|[0-9]{4}(?P<s>[ \-])(?:[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{1,4}"
    r"(?:(?P=s)[0-9]{3})?|[0-9]{6}(?P=s)[0-9]{4,5}))(?![\w]|[.,\-][0-9])"
)
_PHONE = re.compile(
    r"""(?<![\w+.\-/])(?:
        (?P<intl>\+[0-9]{1,3}(?:[ .\-]?\(?[0-9]{1,5}\)?){1,6})             # +44 20 7946 0958
      | (?:1[.\-])?\(?[2-9][0-9]{2}\)?\ ?[.\-]?[0-9]{3}[.\-][0-9]{4}       # 555-123-4567, (555) 123-4567
      | \(0[0-9]{1,4}\)\ ?[0-9]{2,8}(?:[ .\-][0-9]{2,8}){0,3}              # (020) 7946 0958
      | 0[0-9]{1,4}(?P<t>[ ./\-])[0-9]{2,8}(?:(?P=t)[0-9]{2,8}){0,3}       # 020 7946 0958, 06-12345678
    )(?![\w]|[.\-/][0-9])""",
    re.VERBOSE,
)


def _card_network(digits: str) -> bool:
    """Leading digits a card network issues (Visa, Mastercard, Amex, Discover, Diners, JCB,
    UnionPay, Maestro): timestamps (1...) and most ids start otherwise."""
    first = digits[0]
    if first in "456":
        return True
    if first == "3":
        return digits[1] in "045678" or digits[:2] == "39"
    if first == "2":
        return 2221 <= int(digits[:4]) <= 2720
    return False


def luhn(digits: str) -> bool:
    """The Luhn check digit holds."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = ord(char) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def _is_phone(match: re.Match[str]) -> bool:
    text = match.group()
    n = _digits(text)
    if match.group("intl") is not None:
        separated = any(c in " .-()" for c in text)
        return (8 if separated else 10) <= n <= 15
    if text[0] == "0" or text[:2] == "(0":  # national, from the trunk prefix
        return 9 <= n <= 11
    return True  # North American: its last separator a dash or dot ("300 500 1000" is a list)


def _starts(text: str, start: int, end: int) -> list[int]:
    """Where a card or phone number may start in a run: its start, and after each space."""
    out = [start]
    i = text.find(" ", start, end)
    while i >= 0:
        out.append(i + 1)
        i = text.find(" ", i + 1, end)
    return out


def numbers(text: str, spans: Spans) -> list[int]:
    """Spans of the IBANs, payment cards and phone numbers in `text`: one scan for runs of
    digits, then the specific patterns where a run has enough digits for one of them. Returns
    where each run of seven digits or more starts (see `said_phones`)."""
    size = len(text)
    long_runs: list[int] = []
    for run in _RUN.finditer(text.encode("latin-1", "replace").translate(_ZEROS)):
        start, end = run.span()
        found = text[start:end]
        digits = len(found) - sum(map(found.count, " ()./-"))
        if digits < 7:
            continue  # a date, an amount, a version
        long_runs.append(start)
        # an IBAN's digits are grouped by spaces, if at all; it starts with its country's capitals
        # a few characters before them
        before = text[max(0, start - _IBAN_REACH) : start]
        if before != before.lower() and digits + found.count(" ") == len(found):
            _ibans(text, max(0, start - _IBAN_REACH), min(size, end + _IBAN_REACH), spans)
        cards = digits >= 13
        # a phone number may start with the `+` or `(` before the run
        lead = start - 1 if start and text[start - 1] in "+(" else start
        phones = digits >= (8 if text[lead] == "+" else 9 if text[lead] in "0(" else 10)
        if not (cards or phones):
            continue  # fewer digits than any card, or phone of the run's shape: a date, an id
        end = min(size, end + 2)  # the lookaheads need the characters after the run
        for at in _starts(text, start, end) if " " in found else (start,):
            if cards:
                match = _CARD.match(text, at, end)
                if match is not None:
                    number = match.group().replace(" ", "").replace("-", "")
                    if 13 <= len(number) <= 19 and _card_network(number) and luhn(number):
                        spans.append((at, match.end(), CARD))
                        continue
            if phones:
                # inside a run, after a space, only a North American number: a group of digits
                # from 0 there is the rest of a longer number ("DE89 3704 0044 0532 0130 01")
                match = _PHONE.match(text, lead if at == start else at, end)
                if match is not None and _is_phone(match) and (at == start or text[at] not in "0("):
                    spans.append((match.start(), match.end(), PHONE))
    return long_runs


# any number right after a word that says it is one: "call me at 5551234567", "Tel: 030 901820"
_PHONE_WORDS = ("phone", "tel", "mobile", "call", "text me", "sms", "whatsapp", "fax")
_SAID_REACH = 40  # the longest word ("whatsapp", "call me"), the 24 characters after it, and a `+(`
_SAID_NUMBER = re.compile(r"[^0-9\n]{0,24}?(?P<number>\+?\(?[0-9][0-9 ().\-]{5,22}[0-9])(?![\w]|[.\-/][0-9])")


def said_phones(text: str, low: str, runs: list[int], spans: Spans) -> None:
    """Spans of the numbers a phone word introduces (`low`: `text` lowered, index for index).
    Such a number is a run of seven digits or more (`runs`: where each starts), so the word is
    looked for only in the few characters before one (or, with many runs, once in the text)."""
    windows = [(max(0, run - _SAID_REACH), run) for run in runs] if len(runs) <= 4 else [(0, len(low))]
    for lo, hi in windows:
        for word in _PHONE_WORDS:
            i = low.find(word, lo, hi)
            while i >= 0:
                after = i + len(word)
                # a word of its own ("tel", not "hotel"; "phone" also ends "telephone", "cellphone")
                starts = (
                    i == 0
                    or not low[i - 1].isalpha()
                    or (word == "phone" and low[i - 4 : i] in ("tele", "cell"))
                )
                if word == "call" and low[after : after + 3] not in (" me", " us"):
                    starts = False  # "call me", "call us"; not "call 911", "a call"
                elif word == "call":
                    after += 3
                if starts and (after == len(low) or not low[after].isalpha()):
                    match = _SAID_NUMBER.match(text, after)
                    if match is not None and 7 <= _digits(match.group("number")) <= 15:
                        spans.append((match.start("number"), match.end("number"), PHONE))
                i = low.find(word, i + 1, hi)


__all__ = ["CARD", "IBAN", "PHONE", "luhn", "numbers", "said_phones"]
