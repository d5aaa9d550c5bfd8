"""A fixed, seeded corpus for PII masking: what the tests mask, record texts, and free texts.

Shared by ``text/test_pii_fast.py`` (the fast path must find exactly what Presidio's plain path
finds), ``serving/test_serve_guardrails.py`` (none of it may reach a log or a table) and
``benchmarks/pii_masking.py`` (the same texts, timed). Everything is generated from
seeds and the bundled COMPAS file, so the corpus is the same on every machine.
"""

from __future__ import annotations

import random

from ethos.data.records import records_to_text
from ethos.datasets import BUNDLED, compas

# --- the texts other tests mask ------------------------------------------------------------------

FIRST = ["John", "Maria", "Wei", "Aisha", "Carlos", "Olga", "James", "Fatima", "Liam", "Sofia"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Rodriguez", "Ivanova", "Johnson", "Khan", "Murphy"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "3400 000000 00009", "6011000000000004"]


def guardrail_corpus(seed: int = 7, n: int = 24) -> tuple[list[str], list[str]]:
    """Texts that carry a name, an e-mail, a phone and a card number each; and those values
    (what the serving guardrail test looks for in every log and table)."""
    rng = random.Random(seed)
    texts, secrets = [], []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{i}@example.com"
        phone = f"(212) 555-{rng.randrange(1000, 9999)}"
        card = rng.choice(CARDS)
        texts.append(
            f"Client {first} {last} was arrested; contact {email} or {phone}. "
            f"Paid bail with card {card}. age: {20 + i}; prior offences: {i % 5}"
        )
        secrets += [f"{first} {last}", email, phone, card]
    return texts, secrets


def guardrail_texts(seed: int = 7, n: int = 24) -> list[str]:
    """The texts of :func:`guardrail_corpus`."""
    return guardrail_corpus(seed, n)[0]


HOSTILE = [  # the inputs of tests/audit/test_audit_privacy.py's exact-mask test
    "Contact John Smith at john.smith@example.com or (212) 555-0147.",
    "My SSN is 536-22-8471 and my card is 4111 1111 1111 1111.",
    "card 4111-1111-1111-1111",
    "Reach me at +44 20 7946 0958 or jane.doe+tag@mail.co.uk",
    "Visit https://example.org/profile?id=7 for details.",
    "Call 555-123-4567 now, ask for Maria Garcia. IP 192.168.1.1",
    "Zoë Müller lives in Berlin; email zoe@müller.de ☃",
    "Card 5500 0000 0000 0004, IBAN DE89 3704 0044 0532 0130 00",
    "Card 4111 1111 1111 1112 here",
    "age: 34; prior offences: 2; charge degree: felony",
    "<script>alert(1)</script> \x00 null",
    "",
    "   \n",
]

# --- COMPAS records as the served model reads them ------------------------------------------

# What the bundled COMPAS set serialises, as ``examples/compas.yaml`` runs read it.
RECORD_FIELDS: list[str] = BUNDLED["compas"].defaults["record_fields"]
FIELD_NAMES: dict[str, str] = BUNDLED["compas"].defaults["field_names"]
IDENTIFYING_FIELDS = ["name", "dob", "c_case_number", "c_jail_in", "race", "sex"]


def compas_texts(n: int = 200, *, identifying: int = 60) -> list[str]:
    """``n`` COMPAS rows as ``examples/compas.yaml`` serialises them, then ``identifying`` rows
    that also carry name, birth date, case number, jail time, race and sex (a client that sends
    what it should not)."""
    table = compas()
    plain = records_to_text(table.iloc[:n], RECORD_FIELDS, field_names=FIELD_NAMES)
    loud = records_to_text(
        table.iloc[n : n + identifying], IDENTIFYING_FIELDS + RECORD_FIELDS, field_names=FIELD_NAMES
    )
    return plain + loud


# --- free texts with names, e-mails, phones, addresses and numbers -------------------------------

STREETS = ["Main Street", "Oak Avenue", "Elm Road", "Harbor Blvd", "Lincoln Way", "5th Avenue"]
CITIES = ["Fort Lauderdale", "Miami", "Chicago", "Boston", "London", "Berlin", "Paris", "Mumbai"]
TEMPLATES = [
    "Officer notes: {name} was seen at {number} {street}, {city}. Call back on {phone}.",
    "Defendant {name} (DOB {date}) lives at {number} {street}, {city}; phone {phone}.",
    "Email from {email}: please contact my lawyer {name2} at {phone2}.",
    "SSN {ssn} on file for {name}; card number {card}.",
    "ssn: {ssn9}  passport: {passport}  ip {ip}",
    "The hearing for {name} moved to {date}. Victim advocate: {name2}, {email}.",
    "{name} is a {nrp} national who moved from {city} to {city2} last year.",
    "See https://court.example.gov/cases/{number} or http://{ip}/docket?id={number}",
    "Wire to IBAN {iban} ref {number}; bitcoin {btc}.",
    "no personal data here: {number} items, {count} priors, risk score {count}",
    "Mobile: {phone}. Home: {phone2}. Fax {digits10}.",
    "{name2} called from {phone_intl} about {name}'s release on {date}.",
    "ITIN {itin}, driver license {license}, bank account {bank}",
    "age {count}; priors {count}; charge: Possession of Cocaine; contact {email}",
]
NRP = ["Haitian", "Cuban", "Christian", "Muslim", "Democrat", "Jamaican", "Mexican"]
IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR1420041010050500013M02606",
]
DOMAINS = ["mail.com", "x.org", "a.co.uk"]
BTC = ["1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]


def free_texts(n: int = 160, seed: int = 16) -> list[str]:
    """``n`` texts from the templates above with seeded values, valid and invalid alike."""
    rng = random.Random(seed)

    def digits(k: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(k))

    def name() -> str:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"

    texts = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        values = {
            "name": name(),
            "name2": name(),
            "email": f"{first.lower()}_{last.lower()}{i}@{rng.choice(DOMAINS)}",
            "phone": f"({rng.randrange(200, 999)}) {rng.randrange(200, 999)}-{digits(4)}",
            "phone2": f"{rng.randrange(200, 999)}.{rng.randrange(200, 999)}.{digits(4)}",
            "phone_intl": rng.choice(["+44 20 7946 ", "+49 30 901820", "+33 1 42 68 ", "+1 305 "])
            + digits(4),
            "digits10": digits(10),
            "ssn": f"{rng.randrange(100, 899)}-{digits(2)}-{digits(4)}",
            "ssn9": digits(9),
            "card": rng.choice(CARDS),
            "passport": digits(9),
            "ip": ".".join(str(rng.randrange(1, 255)) for _ in range(4)),
            "date": f"{rng.randrange(1, 13)}/{rng.randrange(1, 29)}/{rng.randrange(1950, 2005)}",
            "number": str(rng.randrange(1, 9999)),
            "count": str(rng.randrange(0, 30)),
            "street": rng.choice(STREETS),
            "city": rng.choice(CITIES),
            "city2": rng.choice(CITIES),
            "nrp": rng.choice(NRP),
            "iban": rng.choice(IBANS),
            "btc": rng.choice(BTC),
            "itin": f"9{digits(2)}-7{digits(1)}-{digits(4)}",
            "license": f"{rng.choice('ABCDEFGH')}{digits(7)}",
            "bank": digits(rng.randrange(8, 17)),
        }
        texts.append(TEMPLATES[i % len(TEMPLATES)].format(**values))
    return texts


def long_text(seed: int = 3) -> str:
    """About 3 000 characters of free texts run together: several windows, entities at the cuts."""
    return " ".join(free_texts(40, seed=seed))


def corpus() -> list[str]:
    """All of the above, in a fixed order (about 500 texts)."""
    return [*guardrail_texts(), *HOSTILE, *compas_texts(), *free_texts(), long_text()]
