"""The F_CLI table of a FactuSOL 2026 database (reference §7.2) and how values are cast on write.

Only F_CLI exists in the emulator; any other table behaves like an unknown one (§5.1: null).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

# Access types of §7.2: "Entero" = Int16, "Entero largo" = Int32, "Moneda" = currency (4 dp),
# "Texto corto n" = text of at most n characters, "Texto largo" = memo, "Fecha/Hora" = date.
INT16 = "int"
INT32 = "long"
MONEY = "money"
TEXT = "text"
MEMO = "memo"
DATE = "date"


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: str
    size: int = 0  # characters, for TEXT only

    def ddl(self, primary_key: bool = False) -> str:
        """SQLite column definition (text compares case-insensitively, §12 INFERRED)."""
        if primary_key:
            return f"{self.name} INTEGER NOT NULL PRIMARY KEY"
        if self.kind in (INT16, INT32):
            return f"{self.name} INTEGER NOT NULL DEFAULT 0"
        if self.kind == MONEY:
            return f"{self.name} REAL NOT NULL DEFAULT 0"
        if self.kind == TEXT:
            return f"{self.name} VARCHAR({self.size}) COLLATE NOCASE NOT NULL DEFAULT ''"
        if self.kind == MEMO:
            return f"{self.name} TEXT COLLATE NOCASE NOT NULL DEFAULT ''"
        return f"{self.name} DATETIME DEFAULT NULL"  # §10: NULL for dates (I)

    @property
    def default(self) -> Any:
        if self.kind in (INT16, INT32):
            return 0
        if self.kind == MONEY:
            return 0.0
        if self.kind in (TEXT, MEMO):
            return ""
        return None


_F_CLI_SPEC: tuple[tuple[str, str, int], ...] = (
    ("CODCLI", "long", 0),
    ("CCOCLI", "long", 0),
    ("NIFCLI", "text", 18),
    ("NOFCLI", "text", 100),
    ("NOCCLI", "text", 100),
    ("DOMCLI", "text", 100),
    ("POBCLI", "text", 30),
    ("CPOCLI", "text", 10),
    ("PROCLI", "text", 40),
    ("TELCLI", "text", 50),
    ("FAXCLI", "text", 25),
    ("PCOCLI", "text", 50),
    ("AGECLI", "long", 0),
    ("BANCLI", "text", 40),
    ("ENTCLI", "text", 4),
    ("OFICLI", "text", 4),
    ("DCOCLI", "text", 2),
    ("CUECLI", "text", 10),
    ("FPACLI", "text", 3),
    ("FINCLI", "money", 0),
    ("PPACLI", "money", 0),
    ("TARCLI", "long", 0),
    ("DP1CLI", "int", 0),
    ("DP2CLI", "int", 0),
    ("DP3CLI", "int", 0),
    ("TCLCLI", "text", 3),
    ("DT1CLI", "money", 0),
    ("DT2CLI", "money", 0),
    ("DT3CLI", "money", 0),
    ("TESCLI", "int", 0),
    ("CPRCLI", "text", 10),
    ("TPOCLI", "int", 0),
    ("PORCLI", "text", 30),
    ("IVACLI", "int", 0),
    ("TIVCLI", "int", 0),
    ("REQCLI", "int", 0),
    ("FALCLI", "date", 0),
    ("EMACLI", "text", 255),
    ("WEBCLI", "text", 60),
    ("MEMCLI", "memo", 0),
    ("OBSCLI", "memo", 0),
    ("HORCLI", "text", 30),
    ("VDECLI", "text", 5),
    ("VHACLI", "text", 5),
    ("CRFCLI", "int", 0),
    ("NVCCLI", "int", 0),
    ("NFCCLI", "int", 0),
    ("NICCLI", "int", 0),
    ("MONCLI", "int", 0),
    ("PAICLI", "text", 50),
    ("DOCCLI", "int", 0),
    ("DBACLI", "text", 50),
    ("PBACLI", "text", 50),
    ("SWFCLI", "text", 50),
    ("CO1CLI", "memo", 0),
    ("CO2CLI", "memo", 0),
    ("CO3CLI", "memo", 0),
    ("CO4CLI", "memo", 0),
    ("CO5CLI", "memo", 0),
    ("IM1CLI", "money", 0),
    ("IM2CLI", "money", 0),
    ("IM3CLI", "money", 0),
    ("IM4CLI", "money", 0),
    ("IM5CLI", "money", 0),
    ("RUTCLI", "text", 3),
    ("SWICLI", "text", 11),
    ("GIRCLI", "text", 50),
    ("CUWCLI", "text", 50),
    ("CAWCLI", "text", 15),
    ("SUWCLI", "int", 0),
    ("MEWCLI", "text", 255),
    ("ESTCLI", "long", 0),
    ("AR1CLI", "text", 13),
    ("AR2CLI", "text", 13),
    ("AR3CLI", "text", 13),
    ("AR4CLI", "text", 13),
    ("AR5CLI", "text", 13),
    ("FELCLI", "long", 0),
    ("TRACLI", "int", 0),
    ("NCFCLI", "int", 0),
    ("FNACLI", "date", 0),
    ("FOTCLI", "text", 255),
    ("SKYCLI", "text", 60),
    ("NO1CLI", "text", 50),
    ("TF1CLI", "text", 50),
    ("EM1CLI", "text", 60),
    ("NO2CLI", "text", 50),
    ("TF2CLI", "text", 50),
    ("EM2CLI", "text", 60),
    ("NO3CLI", "text", 50),
    ("TF3CLI", "text", 50),
    ("EM3CLI", "text", 60),
    ("NO4CLI", "text", 50),
    ("TF4CLI", "text", 50),
    ("EM4CLI", "text", 60),
    ("NO5CLI", "text", 50),
    ("TF5CLI", "text", 50),
    ("EM5CLI", "text", 60),
    ("RETCLI", "int", 0),
    ("CTMCLI", "int", 0),
    ("MNPCLI", "int", 0),
    ("IFICLI", "long", 0),
    ("IMPCLI", "long", 0),
    ("NCACLI", "int", 0),
    ("CAMCLI", "money", 0),
    ("CO6CLI", "memo", 0),
    ("IM6CLI", "money", 0),
    ("AR6CLI", "text", 13),
    ("CO7CLI", "memo", 0),
    ("IM7CLI", "money", 0),
    ("AR7CLI", "text", 13),
    ("CO8CLI", "memo", 0),
    ("IM8CLI", "money", 0),
    ("AR8CLI", "text", 13),
    ("CO9CLI", "memo", 0),
    ("IM9CLI", "money", 0),
    ("AR9CLI", "text", 13),
    ("CO10CLI", "memo", 0),
    ("IM10CLI", "money", 0),
    ("AR10CLI", "text", 13),
    ("CO11CLI", "memo", 0),
    ("IM11CLI", "money", 0),
    ("AR11CLI", "text", 13),
    ("CO12CLI", "memo", 0),
    ("IM12CLI", "money", 0),
    ("AR12CLI", "text", 13),
    ("ME1CLI", "long", 0),
    ("ME2CLI", "long", 0),
    ("ME3CLI", "long", 0),
    ("ME4CLI", "long", 0),
    ("ME5CLI", "long", 0),
    ("ME6CLI", "long", 0),
    ("ME7CLI", "long", 0),
    ("ME8CLI", "long", 0),
    ("ME9CLI", "long", 0),
    ("ME10CLI", "long", 0),
    ("ME11CLI", "long", 0),
    ("ME12CLI", "long", 0),
    ("CASCLI", "text", 255),
    ("EMOCLI", "long", 0),
    ("PRECLI", "money", 0),
    ("DTCCLI", "money", 0),
    ("EPETCLI", "text", 13),
    ("ERECCLI", "text", 13),
    ("ECLICLI", "text", 13),
    ("EPAGCLI", "text", 13),
    ("FUMCLI", "date", 0),
    ("PGCCLI", "text", 3),
    ("RESCLI", "text", 200),
    ("RFICLI", "money", 0),
    ("PRACLI", "text", 30),
    ("ACTCLI", "text", 4),
    ("ECOCLI", "text", 60),
    ("ECNCLI", "text", 60),
    ("EADCLI", "text", 60),
    ("TWICLI", "text", 255),
    ("A1KCLI", "int", 0),
    ("MOVCLI", "text", 50),
    ("CPFCLI", "text", 15),
    ("RCCCLI", "int", 0),
    ("MUTCLI", "int", 0),
    ("MRECLI", "text", 35),
    ("MFECLI", "date", 0),
    ("ACO1CLI", "text", 20),
    ("ADO1CLI", "text", 100),
    ("ACP1CLI", "text", 10),
    ("APO1CLI", "text", 30),
    ("APR1CLI", "text", 40),
    ("APA1CLI", "text", 50),
    ("ACO2CLI", "text", 20),
    ("ADO2CLI", "text", 100),
    ("ACP2CLI", "text", 10),
    ("APO2CLI", "text", 30),
    ("APR2CLI", "text", 40),
    ("APA2CLI", "text", 50),
    ("ACO3CLI", "text", 20),
    ("ADO3CLI", "text", 100),
    ("ACP3CLI", "text", 10),
    ("APO3CLI", "text", 30),
    ("APR3CLI", "text", 40),
    ("APA3CLI", "text", 50),
    ("IEUCLI", "int", 0),
    ("ACO4CLI", "text", 20),
    ("ADO4CLI", "text", 100),
    ("ACP4CLI", "text", 10),
    ("APO4CLI", "text", 30),
    ("APR4CLI", "text", 40),
    ("APA4CLI", "text", 50),
    ("BTRCLI", "int", 0),
    ("CFECLI", "int", 0),
    ("MDFCLI", "int", 0),
    ("COPCLI", "int", 0),
    ("APDCLI", "int", 0),
    ("PECCLI", "int", 0),
    ("MDACLI", "long", 0),
    ("TRECLI", "int", 0),
    ("CVICLI", "int", 0),
    ("FAVCLI", "text", 1),
    ("FCBCLI", "text", 255),
    ("ITGCLI", "text", 255),
    ("FEFCLI", "int", 0),
    ("ATVCLI", "int", 0),
    ("DECCLI", "int", 0),
    ("SDCCLI", "int", 0),
    ("CROCLI", "text", 20),
)

F_CLI: tuple[Column, ...] = tuple(Column(n, k, s) for n, k, s in _F_CLI_SPEC)
TABLES: dict[str, tuple[Column, ...]] = {"F_CLI": F_CLI}
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {"F_CLI": ("CODCLI",)}


def find_table(name: Any) -> str | None:
    """Canonical table name, matched case-insensitively like SQL Server, or None."""
    if not isinstance(name, str):
        return None
    upper = name.strip().upper()
    return upper if upper in TABLES else None


def columns_by_name(table: str) -> dict[str, Column]:
    return {c.name: c for c in TABLES[table]}


class CastError(ValueError):
    """A value the column would not accept (→ BDEscribirRegistroError, §5.4)."""


_INT_RANGES = {INT16: (-(2**15), 2**15 - 1), INT32: (-(2**31), 2**31 - 1)}
_MONEY_MAX = 922_337_203_685_477.0
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_NUM_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DATE_TEXT = re.compile(r"^(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2})?$")


def format_date(value: dt.datetime) -> str:
    """Dates are stored and returned as `YYYY-MM-DDTHH:MM:SS` (§4.1)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def cast_value(
    column: Column, value: Any, *, overlong_text: str = "error", non_cp1252: str = "replace"
) -> Any:
    """Convert a JSON `dato` to what the column stores, or raise CastError.

    Strings are converted to the column type (one production client sends every value as a
    string, §5.4). JSON null stores the column default (I).
    """
    if value is None:
        return column.default
    if isinstance(value, (bool, dict, list)):
        raise CastError(f"{column.name}: unsupported value {value!r}")
    if column.kind in (INT16, INT32):
        return _cast_int(column, value)
    if column.kind == MONEY:
        return _cast_money(column, value)
    if column.kind == DATE:
        return _cast_date(column, value)
    return _cast_text(column, value, overlong_text, non_cp1252)


def _cast_int(column: Column, value: Any) -> int:
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise CastError(f"{column.name}: {value!r} is not an integer")
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_TEXT.match(value.strip()):
        number = int(value.strip())
    else:
        raise CastError(f"{column.name}: {value!r} is not an integer")
    low, high = _INT_RANGES[column.kind]
    if not low <= number <= high:
        raise CastError(f"{column.name}: {number} out of range")
    return number


def _cast_money(column: Column, value: Any) -> float:
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _NUM_TEXT.match(value.strip()):
        number = float(value.strip())
    else:
        raise CastError(f"{column.name}: {value!r} is not a number")
    if not math.isfinite(number) or abs(number) > _MONEY_MAX:
        raise CastError(f"{column.name}: {value!r} out of range")
    return round(number, 4)


def _cast_date(column: Column, value: Any) -> str:
    # §5.4/§8.4 #7: "YYYY-MM-DD" and "YYYY-MM-DDTHH:MM:SS" are the formats known to work.
    match = _DATE_TEXT.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise CastError(f"{column.name}: {value!r} is not YYYY-MM-DD[THH:MM:SS]")
    try:
        parsed = dt.datetime.fromisoformat(match.group(1) + (match.group(2) or "T00:00:00"))
    except ValueError as exc:
        raise CastError(f"{column.name}: {value!r} is not a valid date") from exc
    return format_date(parsed)


def _cast_text(column: Column, value: Any, overlong_text: str, non_cp1252: str) -> str:
    if isinstance(value, (int, float)):
        text = str(value)  # implicit conversion, like the SQL engine would do
    elif isinstance(value, str):
        text = value
    else:
        raise CastError(f"{column.name}: {value!r} is not text")
    text = _to_cp1252(column, text, non_cp1252)
    if column.kind == TEXT and len(text) > column.size:
        # §5.4: overflow behaviour unknown; INFERRED error, switch "truncate" for the other case.
        if overlong_text == "truncate":
            return text[: column.size]
        raise CastError(f"{column.name}: {len(text)} characters > {column.size}")
    return text


def _to_cp1252(column: Column, text: str, mode: str) -> str:
    """§2: FactuSOL data is cp1252; characters outside it may not survive (switch non_cp1252)."""
    if mode == "store":
        return text
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        if mode == "error":
            raise CastError(f"{column.name}: characters outside cp1252") from None
        return "".join(ch if _in_cp1252(ch) else "?" for ch in text)
    return text


def _in_cp1252(ch: str) -> bool:
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True
