"""Endpoint URLs: where the chat and model requests go, and how messages show a URL.

No httpx here, so the settings code can check a URL without loading the client.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ._errors import InvalidEndpointURL

__all__ = ["display_url", "endpoint_urls"]


def endpoint_urls(base_url: str) -> tuple[str, str]:
    """(chat completions URL, models URL) for an endpoint, like Backend.AI joins them.

    `/v1/chat/completions` is appended once: `http://h:8000`, `http://h:8000/`, `http://h:8000/v1/`
    and `http://h:8000/v1/chat/completions` all give `http://h:8000/v1/chat/completions`.
    A path prefix (a proxy route) and a query string are kept.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidEndpointURL(display_url(base_url), "it must start with http:// or https://")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidEndpointURL(display_url(base_url), str(exc)) from None
    if not host:
        raise InvalidEndpointURL(display_url(base_url), "it has no host")
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        chat, api = path, path[: -len("/chat/completions")]
    else:
        api = path if path.endswith("/v1") else path + "/v1"
        chat = api + "/chat/completions"

    def join(p: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, p, parts.query, ""))

    return join(chat), join(api + "/models")


def _base_path(path: str) -> str:
    """An endpoint URL's path without `/chat/completions` or `/models`, then without `/v1`."""
    for suffix in ("/chat/completions", "/models"):
        path = path.removesuffix(suffix)
    return path.removesuffix("/v1")


def props_url(models_url: str) -> str:
    """llama.cpp's `/props`, beside (not under) `/v1`: `http://h:8080/v1/models` -> `http://h:8080/props`."""
    parts = urlsplit(models_url)
    return urlunsplit((parts.scheme, parts.netloc, _base_path(parts.path) + "/props", parts.query, ""))


def plain_http_url(url: str) -> str:
    """The endpoint's URL with http:// (the port kept: the server listens there), for the hint
    that an https:// endpoint may be plain HTTP."""
    parts = urlsplit(display_url(url))
    netloc = parts.netloc if parts.port else f"{parts.netloc}:443"
    return urlunsplit(("http", netloc, _base_path(parts.path), "", ""))


def display_url(url: str) -> str:
    """The URL as messages show it: no user:password, no query (either may hold a secret)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "(unparsable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
