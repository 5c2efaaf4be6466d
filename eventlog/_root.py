"""The store's root folder: created private, tightened when found loose, checked to be a folder
(of this user, else a warning). Every writer starts here."""

from __future__ import annotations

import os
import stat
from typing import Callable

from ._errors import StoreWriteError
from ._files import StorePaths
from ._fsio import DIR_MODE, OddPath, describe_mode, ensure_private_dir, tighten

Warn = Callable[[str], None]


def open_root(paths: StorePaths, warn: Warn) -> None:
    """Make the store's root a private folder: created 0700 if missing. One stat when all is
    well. A looser root is tightened, with every folder and file of the store in it (a walk of
    the store's folders only, and only then; nothing else in the root is touched). bai says so
    when others could write there (0777: the store was opened up) or when the folder holds
    things that are not the store's (BAI_CHAT_HOME naming an existing folder by mistake); not
    for a 0755 store alone, as Backend.AI's CLI makes it in ordinary use. A root of another
    user is used, with a warning. The root may be a link (to where the user keeps the store);
    nothing inside it may."""
    try:
        try:
            st = os.stat(paths.root)
        except FileNotFoundError:
            ensure_private_dir(paths.root, follow=True)
            return
        if not stat.S_ISDIR(st.st_mode):
            raise OddPath(paths.root, describe_mode(st.st_mode), wanted="a folder")
        if st.st_uid != os.geteuid():
            warn(f"the chat history store {paths.root} belongs to another user (uid {st.st_uid}; you are uid "
                 f"{os.geteuid()}): what bai writes there is yours; set BAI_CHAT_HOME to use a store of your own")
        if (st.st_mode & 0o777) != DIR_MODE:
            ensure_private_dir(paths.root, follow=True)
            changed = tighten([paths.root], only=paths.is_store_name)
            changed += tighten([paths.own, paths.logs, paths.kept, paths.legacy_logs])
            more = f", and {changed} folder(s) and file(s) of the store to 0700/0600" if changed else ""
            foreign = sorted(n for n in os.listdir(paths.root) if not paths.is_store_name(n))
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                warn(f"made {paths.root} private (mode {st.st_mode & 0o777:04o} -> 0700{more}) to keep the chat "
                     f"history there; it also holds {len(foreign)} thing(s) not bai's ({shown}), left as they are: "
                     "is BAI_CHAT_HOME the folder you meant?")
            elif st.st_mode & 0o022:
                warn(f"made {paths.root} private (mode {st.st_mode & 0o777:04o} -> 0700{more}): it holds your "
                     "conversations and tokens")
    except OSError as e:
        raise StoreWriteError(f"the store directory {paths.root}", e) from e
