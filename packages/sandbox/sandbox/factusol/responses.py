"""The emulator's answers: the API envelope, streamed rows, ASP.NET error bodies, and the
lenient JSON and case-insensitive field binding of the requests (§2, §4, §8.1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response

__all__ = ["envelope", "rows_response"]


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type="application/json; charset=utf-8")


def envelope(resultado: Any, respuesta: str = "OK") -> Response:
    """The envelope of every API answer, HTTP 200 even for errors (§4, §8.1)."""
    return _json({"resultado": resultado, "respuesta": respuesta})


def rows_response(names: list[str], rows: list[tuple[Any, ...]]) -> Response:
    """Rows as lists of {columna, dato} in column order; zero rows -> null (§4).

    A full F_CLI read is one response (§8.3: no paging), 205 cells a row, so the JSON is built
    by hand and streamed instead of going through 20 million dicts for 100k clients.
    """
    if not rows:
        return envelope(None)
    prefixes = [f'{{"columna":{_encode_str(n)},"dato":' for n in names]

    def generate() -> Iterator[str]:
        yield '{"resultado":['
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            text = ",".join(
                "["
                + ",".join([p + _encode_value(v) + "}" for p, v in zip(prefixes, row, strict=True)])
                + "]"
                for row in chunk
            )
            yield text if start == 0 else "," + text
        yield '],"respuesta":"OK"}'

    return Response(generate(), content_type="application/json; charset=utf-8")


_encode_str: Callable[[str], str] = json.encoder.encode_basestring


def _encode_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else "null"
    if kind is bytes:
        return _encode_str(value.decode("latin-1"))
    return json.dumps(value, ensure_ascii=False)


def _message(text: str, status: int) -> Response:
    """ASP.NET Web API error body (§8.1)."""
    return _json({"Message": text}, status)


def _lenient_json(text: str) -> Any:
    """JSON, also accepting single-quoted strings as one PHP client sends (§2, Newtonsoft)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j, buf = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            raw = "".join(buf)
            if ch == "'":
                raw = raw.replace("\\'", "'").replace('"', '\\"')
            out.append(f'"{raw}"')
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return json.loads("".join(out))


def _field(body: dict[str, Any], name: str) -> Any:
    """Model binding is case-insensitive in ASP.NET."""
    if name in body:
        return body[name]
    lower = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return None
