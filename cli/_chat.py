"""Chat turns: settings resolved, history replayed within the context window, the endpoint
asked, the round saved.

A ChatSession holds one endpoint client and the conversation's settings; a one-shot call is
a session of one turn, the interactive mode a session of many. A round is recorded only
after a complete answer with assistant text; an error, a broken stream or Ctrl-C records
nothing (they propagate as exceptions; main maps them to exit codes).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

from eventlog import RoundEvent, as_messages, recent_rounds

from . import _settings as settings
from ._app import App
from ._context_window import fit_rounds, shrink_after_refusal
from ._exitcodes import NO_TEXT, NOT_SAVED, OK
from ._turn_notes import cut_by, describe_turn, tokens_per_second
from ._input import clean_arg, read_stdin, stdin_is_data
from ._reasoning import ReasoningView, saved_form, wanted
from ._signals import saving
from .endpoint import APIError, TerminalFilter, json_for_terminal, one_line, strip_controls

Write = Callable[[str], object]

# After an answer, a busy lock is waited for this long (with a note after a few seconds): the
# answer is spent, so bai waits rather than drop it. Before sending, the store's check waits less.
SAVE_WAIT = 60.0


class ChatUsageError(Exception):
    """A problem with what the user asked for; shown as a usage error (exit 2)."""


@dataclass
class ChatRequest:
    deployment: str
    message: str = ""
    history_limit: int | None = None
    system: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    stream: bool = True
    as_json: bool = False
    timeout: float = 300.0
    deadline: float | None = None  # None: config, else the endpoint client's default
    raw: bool = False  # print the answer as sent, terminal control sequences included
    endpoint: str | None = None
    token: str | None = None
    verify: bool = True
    verbose: bool = False
    conversation: str | None = None  # None: the deployment's main conversation (the one Backend.AI shares)
    show_reasoning: bool | None = None  # None: the deployment's setting, else only when stderr is a terminal


@dataclass
class Target:
    """Where and how to send: flags first, then config.json, then defaults."""

    endpoint: str
    token: str | None
    model: str | None
    system: str | None
    history_limit: int
    deadline: float | None = None


def resolve_target(app: App, req: ChatRequest) -> Target:
    config = app.deployment_config(req.deployment)
    endpoint = req.endpoint or config.endpoint or app.settings.backend_ai_endpoint(req.deployment)
    if not endpoint:
        raise ChatUsageError(
            f"no endpoint is set for deployment {req.deployment}: "
            f"bai deployment chat-config set {req.deployment} --endpoint URL (or pass --endpoint)"
        )
    limit = req.history_limit if req.history_limit is not None else config.history_limit
    return Target(
        endpoint=endpoint,
        token=req.token if req.token is not None else settings.token_of(config, os.environ, app.warn_once),
        model=req.model or config.model,
        system=req.system if req.system is not None else config.system,
        history_limit=settings.DEFAULT_HISTORY_LIMIT if limit is None or limit < 0 else limit,
        deadline=req.deadline if req.deadline is not None else config.deadline,
    )


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


class ChatSession:
    """One deployment's conversation through one endpoint client."""

    def __init__(self, app: App, req: ChatRequest) -> None:
        from .endpoint import EndpointClient

        self.app = app
        self.req = req
        self.target = resolve_target(app, req)
        deadline = {"deadline": self.target.deadline} if self.target.deadline else {}
        self.client = EndpointClient(self.target.endpoint, self.target.token, timeout=req.timeout,
                                     verify=req.verify, deployment=req.deployment, **deadline)
        self._printed = False
        self._window: int | None = None
        self._model_cached = False  # the model in use came from the cache
        configured = app.deployment_config(req.deployment).endpoint or app.settings.backend_ai_endpoint(req.deployment)
        self._one_off = None if self.target.endpoint == configured else settings.CacheEntry(endpoint=self.target.endpoint)

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    @property
    def deployment(self) -> str:
        return self.req.deployment

    @property
    def stream(self) -> str:
        """The store's stream of this conversation (the deployment's id for its main one)."""
        from eventlog import stream_id

        return stream_id(self.req.deployment, self.req.conversation)

    def model(self) -> str:
        """--model / config, else the cached default (24 h), else the server's first model (cached)."""
        if self.target.model:
            return self.target.model
        cached = self.cached()
        if cached.default_model and cached.is_fresh():
            self.target.model = cached.default_model
            self._model_cached = True  # a server may drop it: see _model_after_not_found
            return cached.default_model
        return self._first_model()

    def _first_model(self) -> str:
        """The server's first model, asked for now, and remembered with what else /v1/models says."""
        models = self.client.list_models()
        first = models.first_id
        if not first:
            raise ChatUsageError(f"the endpoint lists no models; pick one with --model or "
                                 f"chat-config set {self.deployment} --model M")
        max_model_len = models.max_model_len(first)
        now = settings.now_iso()
        self._cache({
            "default_model": first, "max_model_len": max_model_len, "last_synced_at": now,
            # vLLM says its window in /v1/models; llama.cpp in /props
            "context_window": None if max_model_len else self.client.context_size(), "window_checked_at": now,
        })
        self.target.model = first
        self._model_cached = False
        return first

    def _model_after_not_found(self, error: APIError, model: str, note: Write) -> str | None:
        """After "model not found" for a model that came from the cache (not --model or the
        settings): the server's first model now, asked for once; None when that does not apply."""
        if not self._model_cached or self._printed or not error.is_model_not_found:
            return None
        self._model_cached = False  # once
        first = self._first_model()
        if first == model:
            return None
        note(f"the server no longer knows the cached model {one_line(model, 200)}; "
             f"retrying with its first model, {one_line(first, 200)}")
        return first

    def cached(self) -> settings.CacheEntry:
        """What bai learned from this endpoint (nothing if the cache is of another endpoint)."""
        if self._one_off is not None:
            return self._one_off
        return self.app.cache_entry(self.deployment).for_endpoint(self.target.endpoint)

    def _cache(self, changes: dict[str, Any]) -> None:
        """Remember something learned from the endpoint, replacing what came from another one.
        What a one-off --endpoint teaches is kept for this session only: the deployment's cache
        stays that of its configured endpoint."""
        if self._one_off is not None:
            self._one_off = msgspec.structs.replace(self._one_off, **changes)
            return
        entry = self.app.cache_entry(self.deployment)
        if entry.endpoint != self.target.endpoint:
            changes = {**{k: None for k in msgspec.structs.asdict(entry)}, **changes}
        self.app.settings.update_cache(self.deployment, {**changes, "endpoint": self.target.endpoint})

    def context_window(self) -> int | None:
        """The tightest of what the server said (cached: /v1/models, /props, a refusal's numbers)
        and what the user configured; when nothing is known, llama.cpp's /props is asked once a day."""
        configured = self.app.deployment_config(self.deployment).context_window
        cached = self.cached()
        known = [n for n in (cached.context_window, cached.max_model_len, configured) if n]
        if known:
            return min(known)
        if cached.window_is_fresh():
            return None
        window = self.client.context_size()
        self._cache({"context_window": window, "window_checked_at": settings.now_iso()})
        return window

    def turn(self, message: str, write: Write, note: Write) -> int:
        """One round: returns OK when saved, NO_TEXT when the answer had no text, NOT_SAVED when
        the round alone is over the cap. Nothing is sent if the round could not be saved now."""
        req = self.req
        self.app.store.check_writable(self.stream)
        model = self.model()
        history = self.app.store.rounds(self.stream)
        window = self._window = self.context_window()
        fit = fit_rounds(recent_rounds(history, self.target.history_limit), window, req.max_tokens,
                         self.target.system, message, calibration=history)
        if fit.left_out:
            note(f"left out the {2 * fit.left_out} oldest replayed message(s) to fit the context window ({window} tokens)")
        replay = fit.rounds
        user_at = settings.now_iso_ms()
        try:
            try:
                result = self._send(model, replay, message, write)
            except APIError as e:
                fresh = self._model_after_not_found(e, model, note)
                if fresh is None:
                    raise
                model = fresh
                result = self._send(model, replay, message, write)
        except APIError as e:
            known = e.context_length
            if known is not None and known.context_window:
                self._cache({"context_window": known.context_window})
                self._window = known.context_window
            if known is None or known.answer_alone_too_long or not replay or self._printed:
                raise
            fewer = shrink_after_refusal(replay, known.excess, history)
            if known.at_least and known.context_window:  # a lower bound: fit bai's own estimate too
                fewer = fit_rounds(fewer, known.context_window, req.max_tokens, self.target.system, message,
                                   calibration=history).rounds
            note(f"the prompt was too long for the model; retrying with {2 * (len(replay) - len(fewer))} "
                 f"fewer replayed message(s) ({2 * len(fewer)} left)")
            replay = fewer
            result = self._send(model, replay, message, write)
        sent_chars = sum(len(m["content"]) for m in build_messages(self.target.system, as_messages(replay), message))
        return self._record(result, message, model, user_at, len(replay), sent_chars, note)

    def _send(self, model: str, replay: list[RoundEvent], message: str, write: Write) -> Any:
        req = self.req
        payload = build_payload(req, model, build_messages(self.target.system, as_messages(replay), message))
        self._printed = False
        self._pieces_at: tuple[float, float] | None = None  # when the first and the last piece came
        thinking = ReasoningView(wanted(req.show_reasoning, self.app.deployment_config(self.deployment).reasoning),
                                 raw=req.raw)
        if req.stream and not req.as_json:
            payload.setdefault("stream_options", {"include_usage": True})
            last: list[str] = [""]
            shown = TerminalFilter()  # a control sequence may come split across pieces

            def arrived() -> None:  # for -v's tokens per second: first piece to last, thinking included
                now = time.monotonic()
                self._pieces_at = (self._pieces_at[0] if self._pieces_at else now, now)

            def on_text(piece: str) -> None:
                arrived()
                if not self._printed:
                    thinking.answer_begins()
                self._printed = True
                piece = piece if req.raw else shown.feed(piece)
                if piece:
                    last[0] = piece
                    write(piece)

            def on_reasoning(piece: str) -> None:
                arrived()
                thinking.piece(piece)

            try:
                return self.client.stream_chat(payload, on_text=on_text, on_reasoning=on_reasoning)
            finally:
                thinking.end()
                if self._printed and not last[0].endswith("\n"):
                    write("\n")
        result = self.client.chat(payload)
        if req.as_json:
            write(json_for_terminal(msgspec.json.format(msgspec.json.encode(result.body), indent=2).decode()) + "\n")
        elif result.text is not None:
            thinking.whole(result.content.reasoning)
            text = result.text if req.raw else strip_controls(result.text)
            write(text if text.endswith("\n") else text + "\n")
        else:
            thinking.whole(result.content.reasoning)  # all there is: "the model only reasoned" follows
        return result

    def _record(self, result: Any, message: str, model: str, user_at: str, replayed: int, sent_chars: int,
                note: Write) -> int:
        content = result.content
        if content.text is None:
            note(f"nothing saved: {content.explain()}")
            return NO_TEXT
        usage = result.body.get("usage") if isinstance(result.body.get("usage"), dict) else None

        def waiting() -> None:
            note(f"another bai process holds the chat history's lock; waiting up to {SAVE_WAIT:g} s to save this answer")

        def record(reasoning: str | None) -> Any:
            return self.app.store.record_round(
                self.stream, message, content.text, user_at=user_at,
                model=result.model or model, finish_reason=content.finish_reason, usage=usage, prompt_chars=sent_chars,
                reasoning=reasoning,
                lock_timeout=max(SAVE_WAIT, self.app.store.lock_timeout), on_wait=waiting, on_locked=hold,
            )

        reasoning = saved_form(content.reasoning)
        with saving() as hold:  # once the lock is taken, a signal takes effect after the save
            recorded = record(reasoning)
            if not recorded.kept and reasoning:  # the reasoning is what made it too large: keep the answer
                recorded = record(None)
                if recorded.kept:
                    note("the model's reasoning was not saved: with it this round is larger than the "
                         "deployment's history cap (history_cap / history_max_bytes); the answer is saved")
        if content.truncated:
            note(f"the answer was cut at {cut_by(self.req, usage, self._window)} (finish_reason: length); "
                 "it is saved as it is")
        if not recorded.kept:
            note("not saved: this round alone is larger than the deployment's history cap "
                 "(history_cap / history_max_bytes); the saved history is unchanged")
        if self.req.verbose:
            note(describe_turn(2 * replayed, result.model or model, usage, recorded.seq if recorded.kept else None,
                               limit=self.target.history_limit, rate=tokens_per_second(usage, self._pieces_at)))
        return OK if recorded.kept else NOT_SAVED


def run_chat(app: App, req: ChatRequest, write: Write, note: Write) -> int:
    """A one-shot call: a session of one turn."""
    with ChatSession(app, req) as session:
        return session.turn(req.message, write, note)


def read_message(parts: tuple[str, ...], stdin: Any = None, note: Write = lambda text: None) -> str:
    """The MESSAGE words joined; stdin for "-" (or no words with stdin not a terminal). Words
    and stdin that is a pipe or a file (see _input.stdin_is_data) are both sent: the words, a
    blank line, then stdin; a last word "-" asks for stdin after the words whatever it is.
    Bytes that are not UTF-8 are replaced with U+FFFD, with a note (see _input)."""
    stdin = stdin or sys.stdin
    if parts == ("-",) or (not parts and not stdin.isatty()):
        text = read_stdin(stdin, note)
    elif not parts:
        raise ChatUsageError("no MESSAGE given (pass it as arguments, or pipe it on stdin)")
    else:
        asked = parts[-1] == "-"
        text = clean_arg(" ".join(parts[:-1] if asked else parts), "MESSAGE", note)
        if asked or stdin_is_data(stdin):
            piped = read_stdin(stdin, note).rstrip("\n")
            if piped.strip():
                text = f"{text}\n\n{piped}"
    if not text.strip():
        raise ChatUsageError("the message is empty")
    return text.rstrip("\n")
