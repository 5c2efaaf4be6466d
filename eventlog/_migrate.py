"""Moving a store made before bai 0.2 to the layout of _files, once, under the writers' lock.

bai 0.1 kept the logs in `logs/` beside Backend.AI's files and damaged copies as
`<file>.corrupt-<time>` wherever the file was. Each step is a rename, so a crash at any point
leaves every file in the old place or the new one, and the next writer finishes the move.
"""

from __future__ import annotations

import os
import stat
from typing import Callable

from ._files import LOG_SUFFIX, StorePaths
from ._fsio import ensure_private_dir, fsync_dir
from ._ids import canonical_deployment_id, is_valid_deployment_id
from ._keep import prune

_OLD_COPY = ".corrupt-"


def needs_migration(paths: StorePaths) -> bool:
    """A legacy `logs/` folder (not a link: nothing is moved out of a folder elsewhere) with a
    log or an old copy left to move; anything else found there stays, and costs one listing."""
    try:
        if not stat.S_ISDIR(os.lstat(paths.legacy_logs).st_mode):
            return False
        return bool(_to_move(paths))
    except OSError:
        return False


def _to_move(paths: StorePaths) -> list[str]:
    """Names in the legacy folder to move: logs and old copies that are regular files (a link,
    a FIFO, a folder is left where it is)."""
    return sorted((n for n in os.listdir(paths.legacy_logs)
                   if (_OLD_COPY in n or (n.endswith(LOG_SUFFIX) and not n.startswith(".")))
                   and stat.S_ISREG(os.lstat(paths.legacy_logs / n).st_mode)), key=_canonical_first)


def migrate(paths: StorePaths, combine: Callable[[str, str], None]) -> None:
    """Move legacy logs into bai/logs (canonical names; `combine(old, canonical)` folds a log
    whose id is another spelling of an existing one into it), and old copies into bai/kept."""
    ensure_private_dir(paths.logs)
    for name in _to_move(paths):
        source = paths.legacy_logs / name
        if _OLD_COPY in name:
            _move_copy(paths, source, name)
            continue
        old_id = name[: -len(LOG_SUFFIX)]
        new_id = canonical_deployment_id(old_id) if is_valid_deployment_id(old_id) else old_id
        target = paths.log(new_id)
        if os.path.lexists(target):
            combine(old_id, new_id)  # reads the legacy log, writes the canonical one, removes the legacy one
        else:
            os.rename(source, target)
    fsync_dir(paths.logs)
    for name in os.listdir(paths.root):
        if _OLD_COPY in name and stat.S_ISREG(os.lstat(paths.root / name).st_mode):
            _move_copy(paths, paths.root / name, name)
    try:
        os.rmdir(paths.legacy_logs)  # only if empty: anything else found there stays
    except OSError:
        pass
    fsync_dir(paths.root)


def _canonical_first(name: str) -> tuple[bool, str]:
    """Logs already named canonically move first; other spellings of them are folded in after."""
    base = name[: -len(LOG_SUFFIX)] if name.endswith(LOG_SUFFIX) else name
    canonical = is_valid_deployment_id(base) and canonical_deployment_id(base) == base
    return (not canonical, name)


def _move_copy(paths: StorePaths, source, name: str) -> None:
    base, _, stamp = name.partition(_OLD_COPY)
    ensure_private_dir(paths.kept)
    os.rename(source, paths.kept / f"{base}.{stamp}")
    prune(paths.kept, base)
