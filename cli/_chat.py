"""One chat turn: settings resolved, history replayed, the endpoint asked, the round saved.

The round is recorded only after a complete answer with assistant text; an error, a broken
stream or Ctrl-C records nothing (they propagate as exceptions to main, which maps them to
exit codes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

from . import _settings as settings
from ._app import App
from ._exitcodes import NO_TEXT, OK
from .endpoint import EndpointError


class ChatUsageError(Exception):
    """A problem with what the user asked for; shown as a usage error (exit 2)."""


@dataclass
class ChatRequest:
    deployment: str
    message: str
    history_limit: int | None = None
    system: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    stream: bool = True
    as_json: bool = False
    timeout: float = 300.0
    endpoint: str | None = None
    token: str | None = None
    verify: bool = True
    verbose: bool = False


@dataclass(frozen=True)
class Target:
    """Where and how to send: flags first, then config.json, then defaults."""

    endpoint: str
    token: str | None
    model: str | None
    system: str | None
    history_limit: int


def resolve_target(app: App, req: ChatRequest) -> Target:
    config = app.deployment_config(req.deployment)
    endpoint = req.endpoint or config.endpoint
    if not endpoint:
        raise ChatUsageError(
            f"no endpoint is set for deployment {req.deployment}: "
            f"bai deployment chat-config set {req.deployment} --endpoint URL (or pass --endpoint)"
        )
    limit = req.history_limit if req.history_limit is not None else config.history_limit
    return Target(
        endpoint=endpoint,
        token=req.token if req.token is not None else config.token,
        model=req.model or config.model,
        system=req.system if req.system is not None else config.system,
        history_limit=settings.DEFAULT_HISTORY_LIMIT if limit is None or limit < 0 else limit,
    )


def resolve_model(app: App, client: Any, deployment: str, configured: str | None) -> str:
    """--model / config, else the cached default (24 h), else the server's first model (cached)."""
    if configured:
        return configured
    cached = app.cache_entry(deployment)
    if cached.default_model and cached.is_fresh():
        return cached.default_model
    models = client.list_models()
    first = models.first_id
    if not first:
        raise ChatUsageError(f"the endpoint lists no models; pick one with --model or chat-config set {deployment} --model M")
    app.update(settings.CACHE, deployment, {
        "default_model": first,
        "max_model_len": models.max_model_len(first),
        "last_synced_at": settings.now_iso(),
    })
    return first


def build_messages(system: str | None, replay: list[dict[str, str]], message: str) -> list[dict[str, str]]:
    """[system?] + replayed rounds + the new user message."""
    head = [{"role": "system", "content": system}] if system else []
    return head + replay + [{"role": "user", "content": message}]


def build_payload(req: ChatRequest, model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    payload = dict(req.params)
    if req.max_tokens is not None:
        payload["max_tokens"] = req.max_tokens
    payload["model"] = model  # always ours, whatever --params says
    payload["messages"] = messages
    return payload


def run_chat(app: App, req: ChatRequest, write: Callable[[str], object], note: Callable[[str], object]) -> int:
    """Do the turn; `write` gets answer text for stdout, `note` one-line remarks for stderr."""
    from .endpoint import EndpointClient

    target = resolve_target(app, req)
    replay = app.store.context(req.deployment, target.history_limit)
    user_at = settings.now_iso_ms()
    with EndpointClient(target.endpoint, target.token, timeout=req.timeout, verify=req.verify, deployment=req.deployment) as client:
        model = resolve_model(app, client, req.deployment, target.model)
        payload = build_payload(req, model, build_messages(target.system, replay, req.message))
        if req.stream and not req.as_json:
            payload.setdefault("stream_options", {"include_usage": True})
            printed: list[str] = []

            def on_text(piece: str) -> None:
                printed.append(piece)
                write(piece)

            result = client.stream_chat(payload, on_text=on_text)
            if printed and not printed[-1].endswith("\n"):
                write("\n")
        else:
            result = client.chat(payload)
            if req.as_json:
                write(msgspec.json.format(msgspec.json.encode(result.body), indent=2).decode() + "\n")
            elif result.text is not None:
                write(result.text if result.text.endswith("\n") else result.text + "\n")
    content = result.content
    if content.text is None:
        note(f"nothing saved: {content.explain()}")
        return NO_TEXT
    usage = result.body.get("usage") if isinstance(result.body.get("usage"), dict) else None
    recorded = app.store.record_round(
        req.deployment, req.message, content.text, user_at=user_at,
        model=result.model or model, finish_reason=content.finish_reason, usage=usage,
    )
    if content.truncated:
        note("the answer was cut at max_tokens (finish_reason: length); it is saved as it is")
    if not recorded.kept:
        note("the round is larger than this deployment's history_max_bytes, so it is not kept as context")
    if req.verbose:
        note(describe_turn(len(replay), result.model or model, usage, recorded.seq))
    return OK


def describe_turn(replayed: int, model: str, usage: dict[str, Any] | None, seq: int) -> str:
    tokens = ""
    if usage and isinstance(usage.get("prompt_tokens"), int):
        tokens = f" · {usage['prompt_tokens']} prompt + {usage.get('completion_tokens', '?')} completion tokens"
    return f"replayed {replayed} message(s) · model {model}{tokens} · saved as round {seq}"


def read_message(parts: tuple[str, ...], stdin: Any = None) -> str:
    """The MESSAGE words joined, or stdin for "-" (or no words with stdin piped)."""
    stdin = stdin or sys.stdin
    if parts == ("-",) or (not parts and not stdin.isatty()):
        text = stdin.read()
    elif not parts:
        raise ChatUsageError("no MESSAGE given (pass it as arguments, or pipe it on stdin)")
    else:
        text = " ".join(parts)
    if not text.strip():
        raise ChatUsageError("the message is empty")
    return text.rstrip("\n")


__all__ = ["ChatRequest", "ChatUsageError", "EndpointError", "read_message", "run_chat"]
