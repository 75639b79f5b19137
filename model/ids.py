"""The one alphabet of item, user and event ids, wherever an id comes in (the API,
the catalog and interaction files).

Every id must be usable as one URL path segment as it is (`/v1/items/{id}`): no
`/`, no space or control character, nothing that needs percent-encoding, and not
`.` or `..` (which clients and proxies resolve away). MovieLens' numeric ids, the
synthetic `s12` / `u3` and SKUs, e-mail addresses or phone numbers as user ids
(`a.b+c@x.org`, `+4930123`) all fit.
"""

from __future__ import annotations

import re

ID_MAX = 128
ID_CHARS = "A-Z a-z 0-9 . _ : @ ~ + -"
ID_RULE = f"1-{ID_MAX} characters from {ID_CHARS} (not '.' or '..')"
ID_PATTERN = rf"^(?!\.\.?$)[A-Za-z0-9._:@~+-]{{1,{ID_MAX}}}$"  # for the OpenAPI schema
_ALLOWED = re.compile(rf"[A-Za-z0-9._:@~+-]{{1,{ID_MAX}}}")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._:@~+-]")


def id_problem(value: str) -> str | None:
    """Why `value` cannot be an id, in words that say what is allowed; None if it can."""
    if _ALLOWED.fullmatch(value) and value not in (".", ".."):
        return None
    if not value or len(value) > ID_MAX:
        return f"{len(value)} characters; ids are {ID_RULE}"
    bad = sorted(set(_NOT_ALLOWED.findall(value)))
    if not bad:
        return f"{value!r} is not an id; ids are {ID_RULE}"
    listed = " ".join(ascii(c) for c in bad[:10])
    return f"{listed} not allowed in an id; ids are {ID_RULE}"


def check_id(value: str) -> str:
    """`value` if it is a valid id; ValueError saying what is allowed if not."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value
