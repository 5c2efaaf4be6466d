"""Schema changes of stored events go through explicit upcasters, one per version step.

UPCASTERS[n] turns a record of version n into version n + 1 (as plain dicts). Version 1 is
the first schema, so the table is empty today; a change to an event adds an entry here and
bumps CURRENT_VERSION, and old logs keep reading.

A new *optional* field (a default, encoded only when set, e.g. RoundEvent.reasoning) is no
version step: every older record already is a valid record of the new shape, and an older bai
reads the new records too (msgspec ignores keys a Struct does not name; its compaction drops
the field, losing nothing else). Bumping the version for it would make every older bai refuse
to write, and skip, every record written from then on.
"""

from __future__ import annotations

from typing import Any, Callable

CURRENT_VERSION = 1

UPCASTERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upcast(record: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record up to CURRENT_VERSION; KeyError if a step is missing."""
    version = record["v"]
    while version < CURRENT_VERSION:
        record = UPCASTERS[version](dict(record))
        version += 1
        record["v"] = version
    return record
