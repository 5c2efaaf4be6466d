"""The deployment id rule: ids become file names, so they are checked before any file is touched.

A UUID is one deployment whatever its spelling (upper case, no hyphens, `urn:uuid:`), as
Backend.AI reads it: bai stores it in its canonical form (lower case, hyphenated), so both
tools name the same deployment the same way. Other ids (`my-llm`) are bai's own and are kept
as given.
"""

from __future__ import annotations

import re
import uuid

from ._errors import InvalidConversationName, InvalidDeploymentId

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


# -- conversations ------------------------------------------------------------------------
# A deployment has its main conversation (the one Backend.AI shares) and may have others,
# each its own stream, named `<deployment>~<name>`: "~" is in no deployment id, so a stream id
# says which deployment and conversation it is, and is its log's file name.

SEPARATOR = "~"
MAIN = "main"  # the name of the main conversation where one is asked for
_CONVERSATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_conversation_name(name: object) -> str | None:
    """A conversation name as stored: None for the main one ("main" or ""), else the name.
    Raises InvalidDeploymentId (a ValueError) if it breaks the rule."""
    if name is None or name == "" or name == MAIN:
        return None
    if not isinstance(name, str) or _CONVERSATION.fullmatch(name) is None:
        raise InvalidConversationName(name)
    return name


def stream_id(deployment: str, conversation: str | None = None) -> str:
    """The stream of a deployment's conversation (the deployment's id alone for the main one)."""
    deployment = canonical_deployment_id(deployment)
    name = check_conversation_name(conversation)
    return deployment if name is None else f"{deployment}{SEPARATOR}{name}"


def split_stream_id(stream: str) -> tuple[str, str | None]:
    """(deployment, conversation name or None for the main one)."""
    deployment, sep, name = stream.partition(SEPARATOR)
    return deployment, (name if sep else None)


def check_stream_id(stream: object) -> str:
    """A stream id in canonical form (the deployment's part canonical), or InvalidDeploymentId."""
    if isinstance(stream, str) and SEPARATOR in stream:
        deployment, name = split_stream_id(stream)
        return stream_id(deployment, name or "~")  # an empty name after "~" breaks the rule
    return canonical_deployment_id(stream)
