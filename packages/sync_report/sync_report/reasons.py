"""Why a record was rejected, in plain Spanish and English, and what a person does about it.

A reject carries a machine ``code`` (newer targets) or only a ``reason`` sentence (older runs,
and the reject files they left behind). The code wins; without one, the sentence is matched
against the wordings the targets use. Anything else falls back to the raw reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REJECT_CODES", "Explanation", "code_for_reason", "explain_reject"]


@dataclass(frozen=True)
class Explanation:
    """A reject explained for office staff (``code`` None: unknown, shown with the raw reason)."""

    code: str | None
    title_es: str
    title_en: str
    what_es: str
    what_en: str
    todo_es: str
    todo_en: str


# {source}: the system the record came from (where values are fixed); {dest}: where it goes.
_TEXTS: dict[str, tuple[str, str, str, str, str, str]] = {
    "ambiguous_match": (
        "Coincidencia dudosa",
        "Ambiguous match",
        "Hay varios registros en {dest} con el mismo NIF o e-mail. El programa nunca adivina "
        "cuál es el bueno ni los fusiona.",
        "Several {dest} records share this NIF or e-mail. The sync never guesses which one is "
        "right and never merges them.",
        "Enlace a mano: en Clientify, escriba el código del cliente de FactuSOL en el campo "
        "«factusol_id» del contacto correcto. O corrija el NIF o e-mail repetido. La próxima "
        "ejecución lo recoge.",
        "Link it by hand: in Clientify, put the FactuSOL client code in the «factusol_id» field "
        "of the right contact. Or fix the repeated NIF or e-mail. The next run picks it up.",
    ),
    "claimed_by_several": (
        "Enlazado dos veces",
        "Linked twice",
        "Más de un contacto de Clientify dice ser el mismo cliente de FactuSOL (tienen el mismo "
        "«factusol_id»).",
        "More than one Clientify contact claims the same FactuSOL client (they share the same "
        "«factusol_id»).",
        "En Clientify, fusione los contactos repetidos, o borre el «factusol_id» del contacto "
        "que no corresponde. Después, vuelva a ejecutar la sincronización.",
        "In Clientify, merge the duplicate contacts, or clear «factusol_id» on the contact that "
        "is not that client. Then run the sync again.",
    ),
    "missing_client": (
        "Cliente inexistente",
        "Client not found",
        "El contacto está enlazado («factusol_id») con un cliente de FactuSOL que no existe; "
        "quizá se borró o el número está mal.",
        "The contact is linked («factusol_id») to a FactuSOL client that does not exist; it may "
        "have been deleted, or the number is wrong.",
        "Corrija o borre el «factusol_id» del contacto en Clientify. Si el cliente debe volver "
        "a crearse, su técnico puede activar «missing_client: recreate».",
        "Fix or clear the contact's «factusol_id» in Clientify. If the client should be created "
        "again, your IT partner can set «missing_client: recreate».",
    ),
    "invalid_record": (
        "Dato no válido",
        "Invalid value",
        "Algún dato del registro no es válido y no se puede guardar tal cual.",
        "A value in the record is not valid and cannot be stored as it is.",
        "Corrija el dato en {source} (el motivo técnico dice cuál). La próxima ejecución lo "
        "recoge.",
        "Fix the value in {source} (the technical reason names it). The next run picks it up.",
    ),
    "no_name": (
        "Sin nombre",
        "No name",
        "El registro no tiene nombre ni nombre de empresa, y {dest} necesita uno.",
        "The record has no name and no company name, and {dest} needs one.",
        "Escriba el nombre en {source}. La próxima ejecución lo recoge.",
        "Enter the name in {source}. The next run picks it up.",
    ),
    "api_refused": (
        "Rechazado por {dest}",
        "Refused by {dest}",
        "{dest} no aceptó el registro al guardarlo.",
        "{dest} did not accept the record when it was written.",
        "El motivo técnico suele nombrar el campo. Corrija ese dato en {source}, o corríjalo en "
        "el fichero de rechazos y reenvíelo (ver abajo).",
        "The technical reason usually names the field. Fix that value in {source}, or fix it in "
        "the reject file and replay it (see below).",
    ),
    "link_conflict": (
        "Ya enlazado con otro",
        "Already linked elsewhere",
        "El registro de {dest} que coincide por NIF o e-mail ya está enlazado con otro cliente.",
        "The {dest} record with the same NIF or e-mail is already linked to another client.",
        "Compruebe si son la misma persona o empresa. Si no lo son, corrija el NIF o el e-mail; "
        "si lo son, enlácelos a mano con «factusol_id» en Clientify.",
        "Check whether they are the same person or company. If not, fix the NIF or e-mail; if "
        "they are, link them by hand with «factusol_id» in Clientify.",
    ),
    "vanished": (
        "Borrado durante la ejecución",
        "Deleted during the run",
        "El registro desapareció de {dest} mientras se sincronizaba (alguien lo borró).",
        "The record disappeared from {dest} while it was being synced (someone deleted it).",
        "No hace falta hacer nada: la próxima ejecución lo vuelve a tratar.",
        "Nothing to do: the next run handles it again.",
    ),
}

REJECT_CODES: tuple[str, ...] = tuple(_TEXTS)

# The targets' reason sentences, most specific first (a reject file outlives code changes).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), code)
    for pattern, code in (
        (r"vanished|desapareci", "vanished"),
        (r"names a factusol client that does not exist", "missing_client"),
        (r"contacts carry|is also on contact|several factusol clients carry", "claimed_by_several"),
        (r"the only contact .*linked to|clients [0-9]+ \(already linked", "link_conflict"),
        (r"several contacts|cannot link by|candidates?\b", "ambiguous_match"),
        (r"no name|without a name|sin nombre", "no_name"),
        (r"refused|rechaz", "api_refused"),
        (
            r"mapping failed|not a positive integer|key property|no usable client code|"
            r"not an integer|invalid|does not match|cannot be parsed",
            "invalid_record",
        ),
    )
)


def code_for_reason(reason: str) -> str | None:
    """The reject code a targets' reason sentence stands for, or None."""
    for pattern, code in _PATTERNS:
        if pattern.search(reason):
            return code
    return None


def explain_reject(
    code: object, reason: object, *, source: str = "FactuSOL", dest: str = "Clientify"
) -> Explanation:
    """Explain one reject; ``source`` is where the record came from, ``dest`` where it went."""
    known = code if isinstance(code, str) and code in _TEXTS else None
    if known is None and isinstance(reason, str):
        known = code_for_reason(reason)
    if known is None:
        return Explanation(
            code=None,
            title_es="Otro motivo",
            title_en="Other reason",
            what_es="El motivo técnico de abajo dice qué pasó.",
            what_en="The technical reason below says what happened.",
            todo_es=f"Corrija el dato en {source} si el motivo lo nombra; si no está claro, "
            "envíe este motivo a su técnico.",
            todo_en=f"Fix the value in {source} if the reason names one; if it is unclear, send "
            "this reason to your IT partner.",
        )
    texts = [text.format(source=source, dest=dest) for text in _TEXTS[known]]
    return Explanation(known, *texts)
