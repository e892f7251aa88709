"""Deterministic, realistic Spanish contacts for the emulator.

Reseeding replaces everything. Nothing is linked to FactuSOL unless `linked_codes` is given;
`modified` lies 2-300 days back so a first incremental run (24 h lookback) right after seeding
sees nothing. Some records carry the odd data real accounts have: padded names, upper-case emails,
phones without prefix or with odd punctuation, "España"/"Spain"/"ES" as address country, NIFs
with dashes or lower-case letters, several emails/phones, the same phone twice.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sandbox.clientify.storage import ID_STARTS, Store, fold
from sandbox.clientify.timeutil import to_us

OWNER = {"id": 56001, "email": "sandbox@example.com", "name": "Sandbox Owner"}
LINK_FIELD = "factusol_id"

_FIRST_TEXT = """
Antonio José Manuel Francisco David Juan Javier Daniel Carlos Jesús Alejandro Miguel
Rafael Pablo Pedro Ángel Sergio Fernando Jorge Luis Alberto Álvaro Adrián Raúl Iván
Rubén Óscar María Carmen Ana Isabel Laura Cristina Marta Lucía Pilar Elena Rosa Sara
Paula Raquel Beatriz Nuria Silvia Patricia Mónica Irene Noelia Sofía Inés Begoña
Montserrat Ainhoa Itziar Núria
"""
_LAST_TEXT = """
García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez
Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres
Domínguez Vázquez Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado
Castro Ortiz Rubio Marín Sanz Núñez Iglesias Medina Garrido Cortés Castillo Santos
Lozano Guerrero Cano Prieto Méndez Cruz Calvo Gallego Vidal León Márquez Herrera Peña
Flores Cabrera Campos Vega Fuentes Carrasco Díez Caballero Reyes Nieto Aguilar Pascual
Santana Herrero Lorenzo Hidalgo Montero Ibáñez Giménez Ferrer Durán Santiago Benítez
Mora Vicente Vargas Arias Carmona Crespo Román Pastor Soto Sáez Velasco Moya Soler Parra
Esteban Bravo Gallardo Rojas Etxeberria Puig Ferrández
"""
FIRST = tuple(_FIRST_TEXT.split())
LAST = tuple(_LAST_TEXT.split())
BUSINESS = (
    "Talleres",
    "Construcciones",
    "Distribuciones",
    "Transportes",
    "Ferretería",
    "Panadería",
    "Asesoría",
    "Clínica Dental",
    "Bodegas",
    "Carpintería",
    "Instalaciones",
    "Hostelería",
)
SUFFIX = ("S.L.", "SL", "S.A.", "S.L.U.", "Sociedad Limitada", "SCP", "CB")
CITIES = (
    ("Madrid", "Madrid", "28"),
    ("Barcelona", "Barcelona", "08"),
    ("Valencia", "Valencia", "46"),
    ("Sevilla", "Sevilla", "41"),
    ("Zaragoza", "Zaragoza", "50"),
    ("Málaga", "Málaga", "29"),
    ("Murcia", "Murcia", "30"),
    ("Palma", "Illes Balears", "07"),
    ("Bilbao", "Bizkaia", "48"),
    ("Alicante", "Alicante", "03"),
    ("Córdoba", "Córdoba", "14"),
    ("Valladolid", "Valladolid", "47"),
    ("Vigo", "Pontevedra", "36"),
    ("Gijón", "Asturias", "33"),
    ("A Coruña", "A Coruña", "15"),
    ("Granada", "Granada", "18"),
    ("Pamplona", "Navarra", "31"),
    ("Santander", "Cantabria", "39"),
)
STREETS = (
    "Calle Mayor",
    "Avenida de la Constitución",
    "Calle Real",
    "Plaza de España",
    "Calle San Juan",
    "Paseo de Gracia",
    "Calle del Carmen",
    "Avenida Diagonal",
    "Calle Nueva",
    "Ronda de Valencia",
    "C/ Alcalá",
    "Avda. Andalucía",
)
COUNTRIES = ("España", "España", "Spain", "ES", "", "españa")  # free text (§3)
DOMAINS = ("gmail.com", "hotmail.com", "yahoo.es", "outlook.es", "telefonica.net", "icloud.com")
TAGS = ("cliente", "newsletter", "feria-2024", "proveedor", "vip", "web")
STATUSES = (
    ("cold-lead", 30),
    ("client", 30),
    ("warm-lead", 10),
    ("hot-lead", 5),
    ("not-qualified-lead", 5),
    ("lost-client", 5),
    ("other", 5),
    ("visitor", 5),
    ("in-deal", 3),
    ("lost-lead", 2),
)
ORIGINS = ("Web", "Feria", "Referido", "Llamada", "Redes sociales")
DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
CIF_LETTERS = "JABCDEFGHI"


def parse_codes(spec: Any) -> list[int]:
    """`"1-10"`, `"1,3,7-9"`, a list of ints, or None -> sorted unique codes."""
    if spec is None or spec == "":
        return []
    if isinstance(spec, list):
        return sorted({int(x) for x in spec})
    codes: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            if high < low:
                raise ValueError(f"bad code range {part!r}")
            codes.update(range(low, high + 1))
        else:
            codes.add(int(part))
    if any(c <= 0 for c in codes):
        raise ValueError("FactuSOL codes are positive integers")
    return sorted(codes)


def dni(rng: random.Random) -> str:
    number = rng.randint(1_000_000, 99_999_999)
    return f"{number:08d}{DNI_LETTERS[number % 23]}"


def nie(rng: random.Random) -> str:
    prefix = rng.randint(0, 2)
    number = rng.randint(0, 9_999_999)
    return f"{'XYZ'[prefix]}{number:07d}{DNI_LETTERS[(prefix * 10_000_000 + number) % 23]}"


def cif(rng: random.Random) -> str:
    letter = rng.choice("ABBBBBBEGJ")
    digits = f"{rng.randint(0, 9_999_999):07d}"
    even = sum(int(d) for d in digits[1::2])
    odd = sum(sum(divmod(int(d) * 2, 10)) for d in digits[0::2])
    control = (10 - (even + odd) % 10) % 10
    tail = CIF_LETTERS[control] if letter in "PQSW" else str(control)
    return f"{letter}{digits}{tail}"


def phone(rng: random.Random, mobile: bool) -> str:
    digits = f"{rng.choice('67') if mobile else '9'}{rng.randint(0, 99_999_999):08d}"
    style = rng.random()
    if style < 0.35:
        return f"+34 {digits[:3]} {digits[3:6]} {digits[6:]}"
    if style < 0.6:
        return digits  # no prefix: the server never adds one (§3)
    if style < 0.75:
        return f"+34{digits}"
    if style < 0.85:
        return f"{digits[:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}"
    if style < 0.93:
        return f"0034 {digits}"
    return f"(+34) {digits[:3]}-{digits[3:6]}-{digits[6:]}"


def _address(rng: random.Random) -> dict[str, Any]:
    city, province, prefix = rng.choice(CITIES)
    return {
        "type": rng.choice((1, 2, 3, 5)),
        "street": f"{rng.choice(STREETS)}, {rng.randint(1, 180)}",
        "city": city,
        "state": province,
        "country": rng.choice(COUNTRIES),
        "postal_code": f"{prefix}{rng.randint(1, 999):03d}",
    }


def _weighted_status(rng: random.Random) -> str:
    return rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]


class _Ids:
    def __init__(self) -> None:
        self.next = dict(ID_STARTS)

    def take(self, kind: str) -> int:
        value = self.next[kind]
        self.next[kind] = value + 1
        return value


def _contact(
    rng: random.Random, ids: _Ids, companies: dict[str, int], now: dt.datetime
) -> dict[str, Any]:
    is_company = rng.random() < 0.2
    if is_company:
        surname = rng.choice(LAST)
        first_name = f"{rng.choice(BUSINESS)} {surname} {rng.choice(SUFFIX)}"
        last_name = ""
        tin = cif(rng) if rng.random() < 0.85 else ""
        local = fold(surname)
        domain_pool: tuple[str, ...] = (f"{fold(surname)}.es", f"{fold(surname)}.com")
    else:
        first_name = rng.choice(FIRST)
        last_name = f"{rng.choice(LAST)} {rng.choice(LAST)}"
        roll = rng.random()
        tin = dni(rng) if roll < 0.6 else nie(rng) if roll < 0.7 else ""
        local = fold(first_name).replace(" ", "") + "." + fold(last_name.split()[0])
        domain_pool = DOMAINS
    if rng.random() < 0.07:  # odd data: padded / doubled spaces, as typed in a web form
        first_name = f" {first_name}  "
        last_name = last_name.replace(" ", "  ")
    if tin and rng.random() < 0.1:
        tin = rng.choice((tin.lower(), f"{tin[:-1]}-{tin[-1]}", f" {tin}"))

    emails = []
    n_emails = rng.choices((0, 1, 2, 3), weights=(10, 70, 15, 5))[0]
    for index in range(n_emails):
        suffix = "" if rng.random() < 0.6 else str(rng.randint(1, 999))
        address = (
            f"{local}{suffix}@{rng.choice(domain_pool)}"
            if index == 0
            else (
                f"{rng.choice(('info', 'admin', 'facturas', 'contacto', local))}"
                f"{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"
            )
        )
        if rng.random() < 0.08:
            address = address.upper()
        etype = 4 if index == 0 and rng.random() < 0.7 else rng.choice((1, 2, 3))
        emails.append({"id": ids.take("email"), "type": etype, "email": address})

    phones = []
    n_phones = rng.choices((0, 1, 2), weights=(15, 60, 25))[0]
    for index in range(n_phones):
        mobile = rng.random() < 0.65
        ptype = 1 if index == 0 else (2 if mobile else rng.choice((3, 4, 5)))
        phones.append(
            {
                "id": ids.take("phone"),
                "type": ptype,
                "phone": phone(rng, mobile),
                "unsubscribed": False,
            }
        )
    if phones and rng.random() < 0.03:  # the same number twice (§3)
        phones.append({**phones[0], "id": ids.take("phone"), "type": 6})

    addresses = []
    if rng.random() < 0.55:
        addresses.append({"id": ids.take("address"), **_address(rng)})
        if rng.random() < 0.1:
            addresses.append({"id": ids.take("address"), **_address(rng)})

    tags = [
        {"id": ids.take("tag"), "name": t} for t in rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2)))
    ]
    custom = []
    if rng.random() < 0.3:
        custom.append(
            {"id": ids.take("custom_value"), "field": "Origen", "value": rng.choice(ORIGINS)}
        )

    company_id = None
    if not is_company and rng.random() < 0.15:
        name = f"{rng.choice(BUSINESS)} {rng.choice(LAST)} {rng.choice(SUFFIX)}"
        company_id = companies.setdefault(name, ID_STARTS["company"] + len(companies))

    modified = now - dt.timedelta(seconds=rng.uniform(2 * 86400, 300 * 86400))
    created = modified - dt.timedelta(seconds=rng.uniform(0, 700 * 86400))
    return {
        "id": ids.take("contact"),
        "_created_us": to_us(created),
        "_modified_us": to_us(modified),
        "owner": OWNER["email"],
        "owner_id": OWNER["id"],
        "owner_name": OWNER["name"],
        "first_name": first_name,
        "last_name": last_name,
        "status": _weighted_status(rng),
        "title": "" if is_company or rng.random() < 0.7 else rng.choice(("Gerente", "Compras")),
        "company_id": company_id,
        "contact_type": None,
        "contact_source": None if rng.random() < 0.7 else {"name": rng.choice(ORIGINS)},
        "emails": emails,
        "phones": phones,
        "addresses": addresses,
        "custom_fields": custom,
        "tags": tags,
        "websites": [],
        "description": "",
        "remarks": "",
        "summary": "",
        "taxpayer_identification_number": tin,
        "country": rng.choice(("", "", "ES", "España")),
        "birthday": None,
        "gdpr_accept": rng.random() < 0.5,
        "channel": rng.choice(("web", "integrations-api", "import")),
        "medium": "",
        "linkedin_url": "",
        "facebook_url": "",
        "twitter_url": "",
        "skype_username": "",
    }


def seed_contacts(
    store: Store,
    *,
    contacts: int = 40,
    seed: int = 42,
    now: dt.datetime | None = None,
    linked_codes: list[int] | None = None,
    with_link_field: bool = False,
) -> int:
    """Replace the account's data with `contacts` generated contacts; return how many."""
    if contacts < 0:
        raise ValueError("contacts must be >= 0")
    now = now or dt.datetime.now(dt.UTC)
    rng = random.Random(seed)
    store.reset()
    # Definitions a real account has besides ours: the client must filter by content_type (§5).
    store.add_custom_field(
        "contacts", "Origen", field_type=1, dropdown_choices=list(ORIGINS), visible=True
    )
    store.add_custom_field("companies", "Sector", label="companies | empresa")
    store.add_custom_field("deals", "factusol_id", label="deals | oportunidad")
    store.add_custom_field("contacts", "verified")
    codes = list(linked_codes or [])
    if with_link_field or codes:  # values need their definition (a CRM cannot have one without)
        store.add_custom_field("contacts", LINK_FIELD)

    ids = _Ids()
    ids.next["custom_field"] = store.next_id("custom_field")
    companies: dict[str, int] = {}
    docs = [_contact(rng, ids, companies, now) for _ in range(contacts)]
    for doc, code in zip(docs, codes, strict=False):
        doc["custom_fields"].append(
            {"id": ids.take("custom_value"), "field": LINK_FIELD, "value": str(code)}
        )
    ids.next["company"] = ID_STARTS["company"] + len(companies)
    store.put_contacts(docs)
    store.put_companies(companies)
    store.set_counters(ids.next)
    return len(docs)
