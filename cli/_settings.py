"""Per-deployment settings and cache, shared with Backend.AI where Backend.AI can read them.

    config.json       Backend.AI's: per UUID deployment, `token` and `model` only
    cache.json        Backend.AI's: per UUID deployment, `endpoint_url`, `default_model`,
                      `last_synced_at` (from its manager); bai reads it, never adds to it
    bai/config.json   bai's own: every other setting, and every setting of a deployment
                      whose id is not a UUID (Backend.AI would refuse the whole file over it)
    bai/cache.json    bai's own: what bai learned from the endpoint, tied to that endpoint

Backend.AI rewrites its files with only the keys it knows, so anything else of bai's there
would be lost at its next save; and one key it cannot read makes it ignore the whole file.
bai 0.1 put everything in the shared files: the first command that finds such entries moves
them where they belong (a copy of anything unusable is kept aside).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

import msgspec

from eventlog import Caps, Store, StoreBusy, StoreError, canonical_deployment_id, is_uuid, is_valid_deployment_id

from . import _settings_file as files
from ._settings_file import SettingsFile

CONFIG = "config.json"
CACHE = "cache.json"
OWN_CONFIG = "bai/config.json"
OWN_CACHE = "bai/cache.json"
CACHE_TTL_SECONDS = 24 * 3600
DEFAULT_HISTORY_LIMIT = 10
SHARED_CONFIG_KEYS = ("token", "model")  # Backend.AI's DeploymentChatConfigEntry
SHARED_CACHE_KEYS = ("endpoint_url", "default_model", "last_synced_at")  # its DeploymentChatCacheEntry

Warn = Callable[[str], None]
OWN_CONFIG_KEYS = ("endpoint", "system", "history_limit", "history_cap", "history_max_bytes", "context_window",
                   "deadline", "reasoning", "token_env")
DEFAULT_KEY = "default_deployment"  # bai/config.json's top level: the deployment `chat` uses when none is named
TOKEN_ENV = "BAI_TOKEN"  # a token for one call, between --token and the settings
OWN_CACHE_KEYS = ("endpoint", "max_model_len", "context_window", "window_checked_at")


class DeploymentConfig(msgspec.Struct, omit_defaults=True):
    """A deployment's settings as the commands see them (both files merged)."""

    endpoint: str | None = None
    token: str | None = None
    model: str | None = None
    system: str | None = None
    history_limit: int | None = None
    history_cap: int | None = None
    history_max_bytes: int | None = None
    context_window: int | None = None
    deadline: float | None = None  # seconds one request may take in all
    reasoning: str | None = None  # "show" | "hide" a reasoning model's thinking (unset: only on a terminal)
    token_env: str | None = None  # the name of an environment variable holding the token (never the token)


def token_of(config: DeploymentConfig, environ: Any, warn: Warn) -> str | None:
    """The token a call sends when --token is not given: $BAI_TOKEN, else the variable the
    settings name (token_env), else the stored token."""
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV]
    if config.token_env:
        if environ.get(config.token_env):
            return environ[config.token_env]
        warn(f"the token's variable {config.token_env} (token_env) is not set"
             + ("; using the stored token" if config.token else "; sending no token"))
    return config.token


class CacheEntry(msgspec.Struct, omit_defaults=True):
    """What bai learned from a deployment's endpoint; valid only for that endpoint."""

    endpoint: str | None = None  # the endpoint the values below came from
    default_model: str | None = None
    max_model_len: int | None = None
    context_window: int | None = None
    last_synced_at: str | None = None  # when default_model (and max_model_len) were fetched
    window_checked_at: str | None = None  # when the server was last asked for its context size

    def is_fresh(self, now: float | None = None) -> bool:
        return _recent(self.last_synced_at, now)

    def window_is_fresh(self, now: float | None = None) -> bool:
        return _recent(self.window_checked_at, now)

    def for_endpoint(self, endpoint: str) -> CacheEntry:
        """The entry if it was learned from `endpoint`, else an empty one."""
        return self if self.endpoint == endpoint else CacheEntry(endpoint=endpoint)


def _recent(stamp: str | None, now: float | None = None) -> bool:
    if not stamp:
        return False
    try:
        synced = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return False
    return 0 <= (now or time.time()) - synced < CACHE_TTL_SECONDS


class Settings:
    """The four files, loaded when first needed; every change is a read-modify-write under
    the store's lock."""

    def __init__(self, store: Store, warn: Warn) -> None:
        self.store = store
        self.warn = warn
        self._files: dict[str, SettingsFile] = {}
        self._migrated = False

    def _file(self, name: str) -> SettingsFile:
        if not self._migrated:  # Backend.AI's two files are checked first, whatever is asked for
            self._migrated = True
            for shared in (CONFIG, CACHE):
                self._files[shared] = files.load(self.store, shared, self.warn)
            if any(_misplaced(self._files[n], n) for n in (CONFIG, CACHE)):
                self.migrate()
        if name not in self._files:
            self._files[name] = files.load(self.store, name, self.warn)
        return self._files[name]

    # -- reading ---------------------------------------------------------------------------

    def config(self, deployment: str) -> DeploymentConfig:
        entry = dict(self._file(OWN_CONFIG).entry(deployment))
        if is_uuid(deployment):
            shared = self._file(CONFIG).entry(deployment)
            entry.update({k: shared[k] for k in SHARED_CONFIG_KEYS if shared.get(k) is not None})
        try:
            return msgspec.convert(entry, DeploymentConfig)
        except msgspec.ValidationError as e:
            self.warn(f"the settings of {deployment} are unreadable ({e}); using none")
            return DeploymentConfig()

    def cache(self, deployment: str) -> CacheEntry:
        return self._file(OWN_CACHE).typed(deployment, CacheEntry, self.warn)

    def backend_ai_endpoint(self, deployment: str) -> str | None:
        """The endpoint URL Backend.AI cached for the deployment (from its manager), if any."""
        url = self._file(CACHE).entry(deployment).get("endpoint_url") if is_uuid(deployment) else None
        return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None

    def known(self, deployment: str) -> bool:
        """Whether any file holds something for the deployment (or might: a file that could not
        be read says nothing either way)."""
        files = [self._file(n) for n in (CONFIG, CACHE, OWN_CONFIG, OWN_CACHE)]
        return any(deployment in f.deployments or f.damaged is not None or f.unreadable is not None for f in files)

    def configured(self) -> list[str]:
        """Every deployment with settings (in either config file), sorted."""
        names = set(self._file(OWN_CONFIG).deployments) | set(self._file(CONFIG).deployments)
        return sorted(n for n in names if is_valid_deployment_id(n))

    def default_deployment(self) -> str | None:
        """The deployment `chat` uses when none is named (bai/config.json), if set and valid."""
        value = self._file(OWN_CONFIG).raw.get(DEFAULT_KEY)
        return canonical_deployment_id(value) if is_valid_deployment_id(value) else None

    # -- writing ---------------------------------------------------------------------------

    def set_default_deployment(self, deployment: str | None) -> None:
        """Set (None: clear) the default deployment, in bai's own file: Backend.AI's config.json
        accepts only its `deployments` map."""
        with self.store.locked():
            current = files.load(self.store, OWN_CONFIG, self.warn)
            before = current.encode()
            if deployment is None:
                current.raw.pop(DEFAULT_KEY, None)
            else:
                current.raw[DEFAULT_KEY] = deployment
            if current.encode() != before or current.damaged:
                files.save(self.store, current)
            self._files[OWN_CONFIG] = current

    def update_config(self, deployment: str, changes: dict[str, Any] | None) -> None:
        """Change settings (`changes` None: remove them all). Backend.AI's two keys of a UUID
        deployment go to config.json, everything else to bai/config.json."""
        if changes is None:
            self._write({CONFIG: (deployment, None), OWN_CONFIG: (deployment, None)})
            return
        shared = {k: v for k, v in changes.items() if is_uuid(deployment) and k in SHARED_CONFIG_KEYS}
        own = {k: v for k, v in changes.items() if k not in shared}
        if is_uuid(deployment):
            own.update({k: None for k in shared})  # never kept in both places
        self._write({CONFIG: (deployment, shared), OWN_CONFIG: (deployment, own)})

    def update_cache(self, deployment: str, changes: dict[str, Any] | None) -> None:
        """Change bai's cache entry (`changes` None: forget it, and Backend.AI's entry too).
        What a chat learns is a convenience: if it cannot be written (the cache file is a link,
        unreadable...) that is a warning and the chat goes on."""
        if changes is None:
            self._write({CACHE: (deployment, None), OWN_CACHE: (deployment, None)})
            return
        try:
            self._write({OWN_CACHE: (deployment, changes)})
        except StoreError as e:
            if isinstance(e, StoreBusy):
                raise
            self.warn(f"what bai learned from the endpoint is not cached: {e}")

    def _write(self, edits: dict[str, tuple[str, dict[str, Any] | None]]) -> None:
        with self.store.locked():
            for name, (deployment, changes) in edits.items():
                if changes == {}:
                    continue
                current = files.load(self.store, name, self.warn)  # re-read under the lock
                before = current.encode()
                current.update(deployment, changes)
                if current.encode() != before or current.damaged:
                    files.save(self.store, current)
                self._files[name] = current

    # -- moving bai 0.1's entries out of Backend.AI's files -----------------------------------

    def migrate(self) -> None:
        """Move what Backend.AI cannot read (or would drop) from its files to bai's own."""
        with self.store.locked():
            loaded = {n: files.load(self.store, n, self.warn) for n in (CONFIG, CACHE, OWN_CONFIG, OWN_CACHE)}
            before = {n: f.encode() for n, f in loaded.items()}
            dropped = _move_out(loaded[CONFIG], loaded[OWN_CONFIG], _shared_config_entry)
            dropped += _move_out(loaded[CACHE], loaded[OWN_CACHE], _shared_cache_entry)
            if dropped:
                for name in (CONFIG, CACHE):
                    self.store.keep_copy(name, before[name])
            for name, f in loaded.items():
                if f.encode() != before[name]:
                    files.save(self.store, f)
            self._files.update(loaded)
        if dropped:
            self.warn(f"moved bai's settings out of Backend.AI's config.json and cache.json; {dropped} "
                      f"{'entry that names' if dropped == 1 else 'entries that name'} no deployment left out "
                      f"(the files as they were are kept in {self.store.paths.kept})")


def _misplaced(f: SettingsFile, name: str) -> bool:
    check = _shared_config_entry if name == CONFIG else _shared_cache_entry
    for key, value in f.deployments.items():
        if not (is_valid_deployment_id(key) and is_uuid(key)) or not isinstance(value, dict):
            return True
        shared, own = check(value)
        if own or shared != value:
            return True
    return False


def _move_out(shared: SettingsFile, own: SettingsFile, split: Callable) -> int:
    """Keep in `shared` only what Backend.AI reads, under canonical UUID keys; move the rest
    to `own` (where `own` has a value already, it stays). Returns how many entries could go
    nowhere (not a deployment id, not an object)."""
    dropped = 0
    kept: dict[str, Any] = {}
    for key, value in shared.deployments.items():
        if not is_valid_deployment_id(key) or not isinstance(value, dict):
            dropped += 1
            continue
        d = canonical_deployment_id(key)
        theirs, ours = split(value) if is_uuid(d) else ({}, value)
        if ours:
            own.update(d, {k: v for k, v in ours.items() if k not in own.entry(d)})
        if theirs:
            kept.setdefault(d, theirs)
    shared.raw["deployments"] = kept
    return dropped


def _shared_config_entry(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what stays in Backend.AI's config entry, what is bai's). Keys neither tool knows stay
    (a newer Backend.AI's, perhaps: it ignores what it does not know)."""
    ours = {k: v for k, v in value.items() if k in OWN_CONFIG_KEYS or
            (k in SHARED_CONFIG_KEYS and not (v is None or isinstance(v, str)))}
    return {k: v for k, v in value.items() if k not in ours}, ours


def _shared_cache_entry(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Backend.AI's cache entry if it is one Backend.AI accepts, else {}; what is bai's). bai
    0.1's entries carry no endpoint: bai keeps them, and asks the server again before use."""
    url, synced, model = value.get("endpoint_url"), value.get("last_synced_at"), value.get("default_model")
    if isinstance(url, str) and _is_datetime(synced) and (model is None or isinstance(model, str)):
        return {k: v for k, v in value.items() if k not in OWN_CACHE_KEYS}, \
            {k: v for k, v in value.items() if k in OWN_CACHE_KEYS}
    return {}, {k: v for k, v in value.items() if k != "endpoint_url"}


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
        return "T" in value or " " in value
    except ValueError:
        return False


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def now_iso_ms() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def caps_policy(settings: Settings) -> Callable[[str], Caps]:
    """The store's caps for each deployment, from the settings (defaults where unset)."""
    cache: dict[str, Caps] = {}

    def caps(deployment: str) -> Caps:
        if deployment not in cache:
            c = settings.config(deployment)
            default = Caps()
            try:
                cache[deployment] = Caps(
                    messages=c.history_cap if c.history_cap is not None else default.messages,
                    bytes=c.history_max_bytes if c.history_max_bytes is not None else default.bytes,
                )
            except ValueError:
                settings.warn(f"the caps of {deployment} are negative; using the defaults")
                cache[deployment] = default
        return cache[deployment]

    return caps
