"""The built-in redactor (`RESPAN_REDACT=pii`, record/pii.py): what it replaces, and the ordinary
numbers and text it must leave exactly as they were."""

from __future__ import annotations

import json
import time

import pytest

from respan_instrument.record.pii import redact
from respan_instrument.record.pii_numbers import luhn

REPLACED = [
    # e-mail addresses
    ("mail john.doe@example.com now", "mail [EMAIL] now"),
    ("Ünïcode: jörg@müller.de", "Ünïcode: [EMAIL]"),
    ("a+b@sub.example.co.uk.", "[EMAIL]."),
    ("<first_last-99@corp.io>", "<[EMAIL]>"),
    ("two: a@b.io, c.d@e.org", "two: [EMAIL], [EMAIL]"),
    ('{"email": "x.y@z.com"}', '{"email": "[EMAIL]"}'),
    # phone numbers
    ("call +1 (555) 123-4567", "call [PHONE]"),
    ("+44 20 7946 0958", "[PHONE]"),
    ("+33 6 12 34 56 78", "[PHONE]"),
    ("+4915112345678", "[PHONE]"),
    ("555-123-4567", "[PHONE]"),
    ("(555) 123-4567", "[PHONE]"),
    ("1-800-555-0199", "[PHONE]"),
    ("555.123.4567", "[PHONE]"),
    ("020 7946 0958", "[PHONE]"),
    ("06 12 34 56 78", "[PHONE]"),
    ("06-12345678", "[PHONE]"),
    ("(020) 7946 0958", "[PHONE]"),
    ("0171 1234567", "[PHONE]"),
    ("Berlin 030 901820.", "Berlin [PHONE]."),
    ("call me at 5551234567", "call me at [PHONE]"),
    ("Phone: 555 1234", "Phone: [PHONE]"),
    ("tel. 0612345678", "tel. [PHONE]"),
    ("Telephone number is 4155550132", "Telephone number is [PHONE]"),
    ("whatsapp +49 151 1234 5678", "whatsapp [PHONE]"),
    ("my cell phone: 07700 900123", "my cell phone: [PHONE]"),
    ("numbers: 555-123-4567 555-987-6543", "numbers: [PHONE] [PHONE]"),
    ("in 2019 555-123-4567", "in 2019 [PHONE]"),
    ("Kontakt: Tel. +49 (0)30 901820", "Kontakt: Tel. [PHONE]"),
    ("Ruf an: 030/901820", "Ruf an: [PHONE]"),
    # payment cards (Luhn-valid, a network's leading digits)
    ("card 4111 1111 1111 1111", "card [CARD]"),
    ("4111111111111111", "[CARD]"),
    ("5500-0000-0000-0004", "[CARD]"),
    ("amex 3782 822463 10005", "amex [CARD]"),
    ("6011111111111117", "[CARD]"),
    ("2223003122003222", "[CARD]"),
    ("(4012888888881881)", "([CARD])"),
    ("card: 4111-1111-1111-1111!", "card: [CARD]!"),
    # IBANs (country length and mod-97)
    ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
    ("GB82WEST12345698765432", "[IBAN]"),
    ("GB82 WEST 1234 5698 7654 32", "[IBAN]"),
    ("FR1420041010050500013M02606", "[IBAN]"),
    ("NL91ABNA0417164300 and more", "[IBAN] and more"),
    ("IBAN: DE89370400440532013000 ABC", "IBAN: [IBAN] ABC"),
    ("pay to BE68539007547034.", "pay to [IBAN]."),
    # credentials
    ("key sk-proj-abc123DEF456ghi789JKL012mno345", "key [SECRET]"),
    ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "Authorization: Bearer [SECRET]"),
    ("bearer abcdef1234567890xyz", "bearer [SECRET]"),
    ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[SECRET]"),
    ("api_key=abc123def456", "api_key=[SECRET]"),
    ('"api_key": "zz9plural7alpha"', '"api_key": "[SECRET]"'),
    ("OPENAI_API_KEY=Zx81-longvalue-here", "OPENAI_API_KEY=[SECRET]"),
    ("client_secret: Qw3rty!Uiop99", "client_secret: [SECRET]"),
    ("https://admin:s3cret@db.example.com/x", "https://[SECRET]@db.example.com/x"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "[SECRET]"),
    ("password: Tr0ub4dor&3", "password: [SECRET]"),
    ("xoxb-1234567890-abcdefghij", "[SECRET]"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[SECRET]"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N", "token [SECRET]"),
]

KEPT = [
    # dates and times
    "2024-01-15", "15/01/2024", "01.02.2024", "Jan 15, 2024", "12:30:45", "2024-01-15T12:30:45Z",
    "2024-01-15T12:30:45.123456+00:00", "2024-01-15 12:30", "between 2019 2020 2021", "2019–2024",
    "Q3 2024", "Mon, 07 Dec 2026 09:00:00 GMT",
    # timestamps and ids
    "1700000000", "1700000000123", "1700000000123456", "1700000000123456789", "ORD-12345678",
    "#123456789", "order 1234567890", "INV-2024-000123", "id 123456789012", "12345678901234567890",
    "123e4567-e89b-12d3-a456-426614174000", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "Tracking 1Z999AA10123456784",
    "chatcmpl-9fceb02d0ae598e95dc970b747", "call_abc123XYZ", "resp_68a1b2c3d4e5f6",
    # amounts and quantities
    "$1,234,567.89", "€1.234.567,89", "1 234 567", "12345.67", "3.14159265358979", "pi 3.1415926535897932384",
    "37.7749, -122.4194", "0.5 0.25 0.125", "300 500 1000", "0800 1200 1600", "1000-2000", "x=+1234", "+5 10 20",
    # versions and addresses
    "1.2.3", "v10.0.19041.1234", "3.11.4", "version 2.3.4567", "192.168.1.1", "10.0.0.255", "90210", "12345-6789",
    "ISBN 978-3-16-148410-0", "ISBN 0-306-40615-2",
    # cards and IBANs that fail their checks
    "4111 1111 1111 1112", "4111111111111112", "order #4000-1234-5678-9010 shipped",
    "DE89 3704 0044 0532 0130 01", "AT10 am tomorrow", "XX89370400440532013000",
    # text that looks near a credential, or an address
    "gpt-4o-2024-08-06", "sk-learn-compatible-transformers-pipeline", "task-based-learning-approaches-here",
    "@mention and user@localhost", "@property", "package@1.2.3", "npm i @types/node", "prompt_tokens: 1500",
    "max_tokens=1000", "token: undefined", "the bearer instrument", "Bearer Bonds", "secret: the answer is 42",
    "password: hunter2", "the key: 12345678", "cell 1234567 of the sheet", "call 911", "a high-throughput thought",
    "Phone model: iPhone 15 Pro", "see https://example.com/a:b/c", "The Hotel 1234567 rooms",
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), REPLACED)
def test_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_and_numbers_survive(text: str) -> None:
    assert redact(text) == text


def test_everything_in_one_prompt_and_the_rest_untouched() -> None:
    text = (
        "Dear support, on 2024-01-15 I paid $1,234.56 for order ORD-20240115-7781 (app 3.11.4) with card "
        "4111 1111 1111 1111. Refund to DE89 3704 0044 0532 0130 00 please; reach me at jane@doe.org or "
        "+44 20 7946 0958. My key was sk-proj-abc123DEF456ghi789JKL012mno345, ts 1700000000123."
    )
    assert redact(text) == (
        "Dear support, on 2024-01-15 I paid $1,234.56 for order ORD-20240115-7781 (app 3.11.4) with card "
        "[CARD]. Refund to [IBAN] please; reach me at [EMAIL] or "
        "[PHONE]. My key was [SECRET], ts 1700000000123."
    )


def test_text_beyond_latin_1_keeps_its_places() -> None:
    """The numbers are found in a one-byte-a-character copy: characters it cannot hold must not
    shift what is replaced."""
    text = "Ünïcode ’quotes’ call +44 20 7946 0958 — card 4111 1111 1111 1111 — 日本 jane@x.jp 😀 DE89 3704 0044 0532 0130 00"
    assert redact(text) == "Ünïcode ’quotes’ call [PHONE] — card [CARD] — 日本 [EMAIL] 😀 [IBAN]"


@pytest.mark.parametrize("others", [0, 3, 8])
def test_a_phone_word_before_its_number_among_other_long_numbers(others: int) -> None:
    ids = " ".join(f"id {1700000000 + i}," for i in range(others))
    text = f"{ids} then call me at 5551234567, {ids}"
    assert redact(text) == f"{ids} then call me at [PHONE], {ids}"


def test_json_stays_json() -> None:
    arguments = json.dumps({"to": "a@b.io", "phone": "+1 415 555 0132", "card": "4111111111111111", "qty": 3})
    assert json.loads(redact(arguments)) == {"to": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "qty": 3}


def test_no_quadratic_time_on_long_runs() -> None:
    """Long runs of what each pattern reads (word characters, digits, separators, capitals) are
    scanned once: a megabyte of each takes well under a second."""
    for text in (
        "a" * 200_000,
        "1" * 200_000,
        "1 " * 100_000,
        "A1" * 100_000,
        "x." * 100_000 + "@",
        "k-" * 100_000,
    ):
        began = time.perf_counter()
        redact(text)
        assert time.perf_counter() - began < 2.0, text[:10]


def test_luhn() -> None:
    assert luhn("4111111111111111") and luhn("79927398713")
    assert not luhn("4111111111111112") and not luhn("79927398710")
