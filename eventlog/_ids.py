"""The deployment id rule: ids become file names, so they are checked before any file is touched.

A UUID is one deployment whatever its spelling (upper case, no hyphens, `urn:uuid:`), as
Backend.AI reads it: bai stores it in its canonical form (lower case, hyphenated), so both
tools name the same deployment the same way. Other ids (`my-llm`) are bai's own and are kept
as given.
"""

from __future__ import annotations

import re
import uuid

from ._errors import InvalidDeploymentId

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_UUID_SPELLING = re.compile(r"(?:urn:uuid:)?[0-9a-fA-F-]{32,36}", re.IGNORECASE)
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_valid_deployment_id(deployment: object) -> bool:
    return isinstance(deployment, str) and _ID.fullmatch(deployment) is not None


def canonical_deployment_id(deployment: object) -> str:
    """The id as bai stores it: a UUID in canonical form, anything else unchanged.
    Raises InvalidDeploymentId if the id breaks the rule."""
    if not is_valid_deployment_id(deployment):
        raise InvalidDeploymentId(deployment)
    assert isinstance(deployment, str)
    if _CANONICAL_UUID.fullmatch(deployment):
        return deployment  # the common case, settled without parsing
    if _UUID_SPELLING.fullmatch(deployment):
        try:
            return str(uuid.UUID(deployment))
        except ValueError:
            pass
    return deployment


def check_deployment_id(deployment: object) -> str:
    """The canonical id (see canonical_deployment_id), or InvalidDeploymentId."""
    return canonical_deployment_id(deployment)


def is_uuid(deployment: str) -> bool:
    """Whether a canonical id is a UUID: a deployment Backend.AI can name too."""
    return _CANONICAL_UUID.fullmatch(deployment) is not None
