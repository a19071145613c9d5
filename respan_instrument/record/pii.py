"""Pure: the built-in redactor (`RESPAN_REDACT=pii`), run on the worker over each content string.

Personal data and credentials become typed placeholders: `[EMAIL]`, `[PHONE]`, `[CARD]`,
`[IBAN]`, `[SECRET]`. The patterns are tuned for precision: a number is a card only when it has
a card's length, a card network's leading digits and a valid Luhn check digit; an IBAN only when
its country's length and its mod-97 check hold; a phone number only in a shape dates, amounts,
versions, order ids and timestamps do not take (an international `+`, a North American
`555-123-4567` / `(555) 123-4567`, a national number written from its trunk `0` in groups, or any
number right after a word such as "phone" or "call me at"). A bare run of digits is left alone:
it is far more often an id or a timestamp than a phone number. A credential is a token with an
issuer's prefix (`sk-`, `AKIA`, `ghp_`, a JSON web token, ...), the value after `Bearer` or
`Authorization:`, or the value assigned to a name that ends in key, secret, token or password.

Speed: Python's regular expression engine spends ~5 ns on every character it scans with a
pattern that cannot skip ahead, so each pattern runs only where a cheap test found something
for it: an `@`, an issuer's prefix, a keyword found with `str.find`, or a candidate run of
digits found by one scan that skips on its first character. Each pattern is anchored on a
boundary its own characters cannot cross (no quadratic backtracking on long runs). Matches are
collected as spans, the earlier kind winning where two overlap (a credential over an e-mail
address, an IBAN over the card-like digits inside it), and the text is rebuilt once.
"""

from __future__ import annotations

import re

from .pii_numbers import CARD, IBAN, PHONE, numbers, said_phones

EMAIL = "[EMAIL]"
SECRET = "[SECRET]"

Spans = list[tuple[int, int, str]]

# ---- credentials -----------------------------------------------------------------------------

# where an issuer's prefix may be: each hit is tried with `_KEY` at the prefix's start
_NEEDLES = (("k-", 1), ("k_", 1), ("AKIA", 0), ("ASIA", 0), ("gh", 0), ("glpat-", 0), ("xox", 0),
            ("AIza", 0), ("hf_", 0), ("eyJ", 0))  # fmt: skip
# the needles worth searching for, by whether the text has a hyphen and an underscore (a needle
# that holds one of them, or whose token does, cannot be where that character is not)
_NEEDLES_BY: dict[tuple[bool, bool], tuple[tuple[str, int], ...]] = {
    (hyphen, underscore): tuple(
        (needle, back)
        for needle, back in _NEEDLES
        if (hyphen or needle not in ("k-", "glpat-", "xox"))
        and (underscore or needle not in ("k_", "gh", "hf_"))
    )
    for hyphen in (False, True)
    for underscore in (False, True)
}
# tokens whose issuer gave them a recognisable prefix; each must still hold a digit (`_issued`)
_KEY = re.compile(
    r"""(?<![\w-])(?:
        (?:sk|rk|pk)-(?:[a-z]+-)?[A-Za-z0-9_\-]{20,}     # OpenAI, Anthropic and alike
      | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}     # Stripe
      | (?:AKIA|ASIA)[0-9A-Z]{16}                      # AWS access key ids
      | gh[pousr]_[A-Za-z0-9]{30,} | github_pat_\w{30,} # GitHub
      | glpat-[A-Za-z0-9_\-]{20,}                      # GitLab
      | xox[abposr]-[A-Za-z0-9\-]{10,}                 # Slack
      | AIza[0-9A-Za-z_\-]{35}                         # Google
      | hf_[A-Za-z0-9]{30,}                            # Hugging Face
      | eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}  # JSON web tokens
    )(?![\w-])""",
    re.VERBOSE,
)
# the names whose assigned value is a credential: `api_key=`, `"client_secret": `, `token:` ...
_SECRET_WORDS = ("key", "secret", "token", "passw", "authorization")
_SECRET_NAME = re.compile(
    r"(?:api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key|secret|token|password|passwd"
    r"|authorization)$"
)
_NAME_CHARS = re.compile(r"[\w\-]*")
_ASSIGNED = re.compile(
    r"""["']?\s*[:=]\s*["']?(?:(?i:bearer|basic|token|digest)\s+)?
        (?P<value>[A-Za-z0-9\-._~+/=!@#$%^&*]{8,})""",
    re.VERBOSE,
)
_BEARER = re.compile(r"\s+(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
_URL_CREDENTIALS = re.compile(r"[^\s/:@]+:[^\s/@]+(?=@)")


def _found(haystack: str, needle: str) -> list[int]:
    """Every index of `needle` in `haystack` (a C search each)."""
    out = []
    i = haystack.find(needle)
    while i >= 0:
        out.append(i)
        i = haystack.find(needle, i + 1)
    return out


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _credentials(text: str, low: str, spans: Spans) -> None:
    # (each multi-character search costs ~3 instructions a character; a single character's, a
    # tenth of that: the rarer characters a needle holds gate its search)
    hyphen, underscore = "-" in text, "_" in text
    if hyphen and "-----BEGIN" in text:
        spans.extend((m.start(), m.end(), SECRET) for m in _PRIVATE_KEY.finditer(text))
    if "://" in text:  # https://user:password@host
        for i in _found(text, "://"):
            match = _URL_CREDENTIALS.match(text, i + 3)
            if match is not None:
                spans.append((match.start(), match.end(), SECRET))
    for needle, back in _NEEDLES_BY[hyphen, underscore]:
        if needle not in text:
            continue
        for i in _found(text, needle):
            match = _KEY.match(text, i - back) if i >= back else None
            if match is not None and _has_digit(match.group()):
                spans.append((match.start(), match.end(), SECRET))
    if ":" in text or "=" in text:
        _assignments(text, low, spans)
    if "bearer" not in low:
        return
    for i in _found(low, "bearer"):
        if i and low[i - 1].isalnum():
            continue
        match = _BEARER.match(text, i + 6)
        if match is not None and not match.group("value").isalpha():  # "bearer instruments" is text
            spans.append((match.start("value"), match.end("value"), SECRET))


def _assignments(text: str, low: str, spans: Spans) -> None:
    """The values assigned to names that end in key, secret, token, password, authorization."""
    for word in _SECRET_WORDS:
        if word not in low:
            continue
        for i in _found(low, word):
            end = _NAME_CHARS.match(low, i + len(word)).end()  # type: ignore[union-attr]
            start = i
            while start > 0 and (low[start - 1].isalnum() or low[start - 1] in "_-"):
                start -= 1
            if _SECRET_NAME.search(low, start, end) is None:
                continue  # max_tokens, keyboard, secretary
            match = _ASSIGNED.match(text, end)
            if match is None:
                continue
            value = match.group("value")
            if value.isalpha() and value.islower() and word != "authorization":
                continue  # "token: undefined"
            spans.append((match.start("value"), match.end("value"), SECRET))


# ---- e-mail addresses -------------------------------------------------------------------------

_LOCAL = re.compile(r"[\w.%+\-]{1,64}\Z")
_DOMAIN = re.compile(r"(?:[^\W_][\w\-]{0,62}\.)+[A-Za-z]{2,24}(?![\w\-]|\.[^\W_])")
_LOCAL_CHARS = frozenset(".%+-_")


def _emails(text: str, spans: Spans) -> None:
    for at in _found(text, "@"):
        local = _LOCAL.search(text, max(0, at - 64), at)
        if local is None:
            continue
        start = local.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_CHARS):
            continue  # a local part longer than any address has
        domain = _DOMAIN.match(text, at + 1)
        if domain is not None:
            spans.append((start, domain.end(), EMAIL))


# ---- all of it ----------------------------------------------------------------------------------


def _merged(text: str, spans: Spans) -> str:
    """`text` with each span replaced; of two that overlap, the one found first stays."""
    kept: Spans = []
    for span in spans:
        start, end, _ = span
        if all(end <= s or start >= e for s, e, _ in kept):
            kept.append(span)
    kept.sort()
    out = []
    at = 0
    for start, end, placeholder in kept:
        out.append(text[at:start])
        out.append(placeholder)
        at = end
    out.append(text[at:])
    return "".join(out)


def redact(text: str) -> str:
    """`text` with e-mail addresses, phone numbers, payment cards, IBANs and credentials replaced
    by `[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`, `[SECRET]`."""
    digits = any(map(text.__contains__, _DIGITS))
    low = text.lower()
    if not digits and "@" not in text and ":" not in text and "=" not in text and "bearer" not in low:
        # Nothing to find (most short messages): numbers need digits, an address an `@`, and a
        # credential a digit (every issuer's token has them), a `:` or `=` before it, "Bearer",
        # or a private key's armour.
        if "-----BEGIN" not in text:
            return text
    if len(low) != len(text):  # (a few characters lower to two: find the keywords in a copy
        low = text.translate(_ASCII_LOWER)  # that lowers only ASCII, index for index)
    spans: Spans = []
    _credentials(text, low, spans)
    if "@" in text:
        _emails(text, spans)
    if digits:
        runs = numbers(text, spans)
        if runs:
            said_phones(text, low, runs, spans)
    return _merged(text, spans) if spans else text


_DIGITS = "0123456789"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

__all__ = ["CARD", "EMAIL", "IBAN", "PHONE", "SECRET", "redact"]
