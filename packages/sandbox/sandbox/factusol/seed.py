"""Deterministic, realistic Spanish client data for F_CLI.

The same seed, client count and day give the same rows. Dates are relative to `today`: FUMCLI is
2 to 400 days old (never within the last 24 h, so a first "modified" run after seeding finds
nothing until someone edits), FALCLI is older than FUMCLI. The data is deliberately messy the way
real desktop data is: phones in many formats, some upper-case or invalid e-mails, 4-digit postal
codes, a few invalid NIFs, empty trade names.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from typing import Any

from sandbox.factusol.schema import F_CLI, format_date
from sandbox.factusol.storage import Store

_NIF_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_CIF_LETTERS = "JABCDEFGHI"

FIRST_NAMES = (
    "María José", "José Luis", "Ángela", "Íñigo", "Begoña", "Nuria", "Jesús", "Lucía", "Sergio",
    "María del Carmen", "Francisco Javier", "Ana Belén", "Raúl", "Inés", "Álvaro", "Marta",
    "Joaquín", "Rocío", "Andrés", "Mónica", "Iñaki", "Pilar", "Óscar", "Concepción", "Rubén",
    "Montserrat", "Jordi", "Ainhoa", "Xosé Manuel", "Nerea", "Juan Carlos", "Sofía", "Tomás",
)  # fmt: skip
SURNAMES = (
    "Fernández", "Gómez", "Pérez", "Núñez", "Martínez", "Sánchez", "Muñoz", "Ibáñez", "Peña",
    "Castaño", "López", "García", "Rodríguez", "Jiménez", "Álvarez", "Romero", "Gutiérrez",
    "Díaz", "Hernández", "Ruiz", "Ordóñez", "Domínguez", "Vázquez", "Ramos", "Gil", "Serrano",
    "Blázquez", "Molina", "Morales", "Suárez", "Ortega", "Delgado", "Castro", "Ortiz", "Rubio",
    "Marín", "Sanz", "Iglesias", "Medina", "Garrido", "Cortés", "Santos", "Lozano", "Guerrero",
    "Cano", "Prieto", "Méndez", "Calvo", "Cruz", "Gallego", "Vidal", "León", "Márquez", "Herrera",
    "Peñalver", "Echeverría", "Goikoetxea", "Puig", "Ferrer", "Castelló",
)  # fmt: skip
SECTORS = (
    "Construcciones", "Transportes", "Talleres", "Distribuciones", "Reformas", "Asesoría",
    "Ferretería", "Instalaciones Eléctricas", "Fontanería", "Carpintería", "Panadería",
    "Hostelería", "Climatización", "Gestoría", "Autocares", "Maderas", "Excavaciones",
    "Informática", "Suministros Industriales", "Estructuras Metálicas", "Limpiezas",
)  # fmt: skip
LEGAL_FORMS = ("S.L.", "S.L.", "S.L.", "S.A.", "S.L.U.", "S.Coop.", "C.B.", "SL", "S.A.U.")
BRANDS = (
    "Bar El Rincón", "Café Plaza", "La Tahona", "Talleres Centro", "El Pinar", "Muebles Olivo",
    "Óptica Visión", "Peluquería Nuria", "Autos Sur", "Frutas La Huerta", "Librería Cervantes",
)  # fmt: skip
STREETS = (
    "C/ Mayor", "Calle Alcalá", "Avda. de la Constitución", "Plaza de España", "C/ Real",
    "Paseo de Gracia", "Avenida Andalucía", "C/ San Vicente", "Calle Ancha", "Ronda de Segovia",
    "Polígono Industrial Las Arenas, Nave", "Camino Viejo de Málaga", "C/ Doctor Fleming",
    "Travesía del Carmen", "Rúa do Vilar", "Carrer de Balmes", "Avda. Diagonal", "C/ Nueva",
)  # fmt: skip
# (town, province, postal prefix) — prefixes below 10 are the ones some users write with 4 digits.
TOWNS = (
    ("Madrid", "Madrid", "28"), ("Móstoles", "Madrid", "28"), ("Alcalá de Henares", "Madrid", "28"),
    ("Barcelona", "Barcelona", "08"), ("Sabadell", "Barcelona", "08"),
    ("L'Hospitalet de Llobregat", "Barcelona", "08"), ("Girona", "Girona", "17"),
    ("Valencia", "Valencia", "46"), ("Alicante", "Alicante", "03"), ("Elche", "Alicante", "03"),
    ("Sevilla", "Sevilla", "41"), ("Málaga", "Málaga", "29"), ("Córdoba", "Córdoba", "14"),
    ("Jerez de la Frontera", "Cádiz", "11"), ("Granada", "Granada", "18"),
    ("Almería", "Almería", "04"), ("Zaragoza", "Zaragoza", "50"), ("Huesca", "Huesca", "22"),
    ("Bilbao", "Bizkaia", "48"), ("Vitoria-Gasteiz", "Álava", "01"),
    ("Donostia-San Sebastián", "Gipuzkoa", "20"), ("A Coruña", "A Coruña", "15"),
    ("Vigo", "Pontevedra", "36"), ("Ourense", "Ourense", "32"), ("Oviedo", "Asturias", "33"),
    ("Gijón", "Asturias", "33"), ("Valladolid", "Valladolid", "47"), ("León", "León", "24"),
    ("Pamplona", "Navarra", "31"), ("Logroño", "La Rioja", "26"), ("Cáceres", "Cáceres", "10"),
    ("Ávila", "Ávila", "05"), ("Cartagena", "Murcia", "30"),
    ("Santa Cruz de Tenerife", "Santa Cruz de Tenerife", "38"),
    ("Las Palmas de Gran Canaria", "Las Palmas", "35"), ("Palma", "Illes Balears", "07"),
)  # fmt: skip
# (PAICLI ISO numeric, town, province, postal code, phone, VAT prefix)
FOREIGN = (
    ("250", "Perpignan", "Pyrénées-Orientales", "66000", "+33 1 23 45 67 89", "FR"),
    ("250", "Toulouse", "Haute-Garonne", "31000", "+33 5 61 22 33 44", "FR"),
    ("620", "Porto", "Porto", "4000-322", "+351 22 123 4567", "PT"),
    ("620", "Lisboa", "Lisboa", "1100-148", "+351 21 987 6543", "PT"),
    ("276", "München", "Bayern", "80331", "+49 89 1234567", "DE"),
    ("380", "Milano", "Lombardia", "20121", "+39 02 1234 5678", "IT"),
)
MAIL_DOMAINS = (
    "gmail.com",
    "hotmail.com",
    "hotmail.es",
    "yahoo.es",
    "telefonica.net",
    "outlook.es",
)
PAYMENT_METHODS = ("CON", "TRA", "R30", "R60", "GIR", "")
OBSERVATIONS = (
    "", "", "", "", "Cliente preferente. Llamar antes de enviar.", "Pago a 30 días fecha factura.",
    "No enviar publicidad.", "Horario de entrega: mañanas.", "Antiguo cliente de la tienda.",
)  # fmt: skip


def nif_letter(number: int) -> str:
    """Control letter of a DNI/NIF number (and of a NIE once X/Y/Z become 0/1/2)."""
    return _NIF_LETTERS[number % 23]


def cif_control(letter: str, digits: str) -> str:
    """Control character of a CIF: a digit, or a letter for P/Q/R/S/N/W/K (public bodies)."""
    even = sum(int(d) for d in digits[1::2])
    odd = sum(sum(divmod(int(d) * 2, 10)) for d in digits[0::2])
    control = (10 - (even + odd) % 10) % 10
    return _CIF_LETTERS[control] if letter in "PQRSNWK" else str(control)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch in ".-")


class _Generator:
    def __init__(self, seed: int, today: dt.datetime, fumcli_has_time: bool) -> None:
        self.rng = random.Random(seed)
        self.today = today.replace(hour=0, minute=0, second=0, microsecond=0)
        self.has_time = fumcli_has_time
        self.index = {c.name: i for i, c in enumerate(F_CLI)}
        self.defaults = [c.default for c in F_CLI]

    def person_nif(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:  # NIE
            prefix = rng.choice("XYZ")
            number = rng.randrange(0, 10_000_000)
            return f"{prefix}{number:07d}{nif_letter(int('XYZ'.index(prefix) * 10**7 + number))}"
        number = rng.randrange(1_000_000, 100_000_000)
        return f"{number:08d}{nif_letter(number)}"

    def company_cif(self) -> str:
        letter = self.rng.choice("BBBBBBAAAEFGJNPQRSUVW")
        digits = f"{self.rng.randrange(0, 10_000_000):07d}"
        return f"{letter}{digits}{cif_control(letter, digits)}"

    def messy_nif(self, nif: str) -> str:
        """Mostly valid; some formatted, prefixed or invalid like real desktop data."""
        roll = self.rng.random()
        if roll < 0.80:
            return nif
        if roll < 0.85:
            return f"{nif[:-1]}-{nif[-1]}"
        if roll < 0.88:
            return f"ES{nif}"
        if roll < 0.91:
            return nif.lower()
        if roll < 0.95:  # wrong control character
            wrong = "A" if nif[-1] != "A" else "B"
            return nif[:-1] + (wrong if nif[-1].isalpha() else str((int(nif[-1]) + 1) % 10))
        if roll < 0.98:
            return ""
        return nif[:5]

    def phone(self, mobile: bool = False) -> str:
        rng = self.rng
        first = rng.choice("67") if mobile else rng.choice(("91", "93", "95", "96", "98", "94"))
        digits = first + "".join(str(rng.randrange(10)) for _ in range(9 - len(first)))
        style = rng.randrange(12)
        if style == 0:
            return f"+34 {digits}"
        if style == 1:
            return f"0034 {digits}"
        if style == 2:
            return f"{digits[:3]}-{digits[3:5]}-{digits[5:7]}-{digits[7:]}"
        if style == 3:
            return f"{digits[:2]} {digits[2:5]} {digits[5:7]} {digits[7:]}"
        if style == 4:
            return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
        if style == 5:
            return f"({digits[:3]}) {digits[3:]}"
        if style == 6 and rng.random() < 0.3:
            return rng.choice(("12", "000", "no tiene", "6001122"))  # invalid
        if style == 7:
            return f"{digits[:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}"
        return digits

    def email(self, local: str, domain: str | None = None) -> str:
        rng = self.rng
        address = f"{local}@{domain or rng.choice(MAIL_DOMAINS)}"
        roll = rng.random()
        if roll < 0.05:
            return address.upper()
        if roll < 0.08:
            return f" {address} "
        if roll < 0.10:
            return rng.choice((f"{local}@", f"{local}.gmail.com", "sin correo", f"{local}@@x.es"))
        if roll < 0.20:
            return ""
        return address

    def postal_code(self, prefix: str) -> str:
        code = f"{prefix}{self.rng.randrange(1, 1000):03d}"
        if code.startswith("0") and self.rng.random() < 0.3:
            return code[1:]  # the leading zero lost in a spreadsheet: "8001"
        return code

    def address(self) -> str:
        rng = self.rng
        street = rng.choice(STREETS)
        number = rng.randrange(1, 250)
        if street.endswith("Nave"):
            return f"{street} {number}"
        extra = rng.choice(("", "", f", {rng.randrange(1, 9)}º {rng.choice('ABCD')}", ", bajo"))
        return (
            f"{street} {number}{extra}" if street.endswith("Nave") else f"{street}, {number}{extra}"
        )

    def day_offset(self, low: int, high: int) -> dt.datetime:
        return self.today - dt.timedelta(days=self.rng.randrange(low, high + 1))

    def row(self, code: int) -> list[Any]:
        rng = self.rng
        row = list(self.defaults)

        def put(name: str, value: Any) -> None:
            row[self.index[name]] = value

        first = rng.choice(FIRST_NAMES)
        surname1, surname2 = rng.choice(SURNAMES), rng.choice(SURNAMES)
        person_name = f"{first} {surname1} {surname2}"
        is_company = rng.random() < 0.55
        foreign = FOREIGN[rng.randrange(len(FOREIGN))] if rng.random() < 0.06 else None
        if is_company:
            sector = rng.choice(SECTORS)
            fiscal = f"{sector} {surname1} {surname2}, {rng.choice(LEGAL_FORMS)}"
            roll = rng.random()
            if roll < 0.35:
                trade = ""
            elif roll < 0.6:
                trade = fiscal
            elif roll < 0.8:
                trade = f"{sector} {surname1}"
            else:
                trade = rng.choice(BRANDS)
            nif = self.company_cif()
            local = _ascii(f"{sector.split()[0]}{surname1}")
            email = self.email(rng.choice(("info", "admin", "pedidos")), f"{local}.es")
            put("PCOCLI", person_name)
            put("WEBCLI", f"www.{local}.es" if rng.random() < 0.4 else "")
        else:
            fiscal = person_name
            trade = "" if rng.random() < 0.7 else rng.choice(BRANDS)
            nif = self.person_nif()
            local = _ascii(f"{first.split()[0]}.{surname1}")
            email = self.email(local)
        if foreign:
            pai, town, province, postal, phone, vat = foreign
            nif = f"{vat}{rng.randrange(10**8, 10**9)}"
            put("IVACLI", 2)
            put("IFICLI", 2)
        else:
            town, province, prefix = rng.choice(TOWNS)
            pai, postal, phone = "724", self.postal_code(prefix), self.phone()
            nif = self.messy_nif(nif)
            put("IFICLI", 1)
        put("CODCLI", code)
        put("CCOCLI", code)
        put("NIFCLI", nif)
        put("NOFCLI", fiscal)
        put("NOCCLI", trade)
        put("DOMCLI", self.address())
        put("POBCLI", town)
        put("CPOCLI", postal)
        put("PROCLI", province)
        put("PAICLI", pai)
        put("TELCLI", phone)
        put("MOVCLI", self.phone(mobile=True) if rng.random() < 0.6 else "")
        put("EMACLI", email)
        put("FPACLI", rng.choice(PAYMENT_METHODS))
        put("TARCLI", 1)
        put("DOCCLI", 1)
        put("ESTCLI", rng.choices((0, 1, 2, 3, 4), weights=(10, 60, 15, 8, 7))[0])
        put("OBSCLI", rng.choice(OBSERVATIONS))
        put("DT1CLI", rng.choice((0.0, 0.0, 0.0, 5.0, 10.0, 2.5)))
        modified = self.day_offset(2, 400)
        if self.has_time:
            modified += dt.timedelta(seconds=rng.randrange(8 * 3600, 20 * 3600))
        created = modified - dt.timedelta(days=rng.randrange(0, 3000))
        put("FUMCLI", format_date(modified))
        put("FALCLI", format_date(created))
        if rng.random() < 0.1:
            put("FNACLI", format_date(dt.datetime(rng.randrange(1940, 2004), 1, 1)))
        return row


def generate(
    clients: int, seed: int, today: dt.datetime, *, fumcli_has_time: bool = False
) -> list[list[Any]]:
    """`clients` full F_CLI rows (column order of §7.2), codes 1..N with a few gaps."""
    gen = _Generator(seed, today, fumcli_has_time)
    rows, code = [], 0
    for _ in range(clients):
        code += 2 if gen.rng.random() < 0.03 else 1  # a few deleted clients leave gaps
        rows.append(gen.row(code))
    return rows


def seed_store(
    store: Store,
    base: str,
    year: str,
    clients: int,
    seed: int,
    today: dt.datetime,
    *,
    fumcli_has_time: bool = False,
) -> int:
    """Replace all F_CLI rows of (base, year) by freshly generated ones; return the count."""
    rows = generate(clients, seed, today, fumcli_has_time=fumcli_has_time)
    store.replace_all(base, year, rows)
    return len(rows)
