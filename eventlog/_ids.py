"""The deployment id rule: ids become file names, so they are checked before any file is touched."""

from __future__ import annotations

import re

from ._errors import InvalidDeploymentId

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def is_valid_deployment_id(deployment: object) -> bool:
    return isinstance(deployment, str) and _ID.fullmatch(deployment) is not None


def check_deployment_id(deployment: object) -> str:
    """Return the id unchanged, or raise InvalidDeploymentId."""
    if not is_valid_deployment_id(deployment):
        raise InvalidDeploymentId(deployment)
    return deployment  # type: ignore[return-value]
