"""The notes at the end of a turn: what cut an answer short, the `-v` line, tokens per second."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .endpoint import one_line

if TYPE_CHECKING:
    from ._chat import ChatRequest


def cut_by(req: ChatRequest, usage: dict[str, Any] | None, window: int | None) -> str:
    """What cut an answer short (finish_reason "length"), from the numbers bai has."""
    def number(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    prompt = number((usage or {}).get("prompt_tokens"))
    completion = number((usage or {}).get("completion_tokens"))
    params = number(req.params.get("max_tokens")) or number(req.params.get("max_completion_tokens"))
    asked, where = (req.max_tokens, "--max-tokens") if req.max_tokens is not None else (params, "--params max_tokens")
    if asked is not None and (completion is None or completion >= asked):
        return f"{where} {asked}"
    if window and prompt is not None and completion is not None and prompt + completion >= window:
        return f"the end of the model's context window ({prompt} prompt + {completion} answer tokens of {window})"
    what = "the server's own limit on an answer"
    if not (window and prompt is not None and completion is not None):  # the window cannot be ruled out
        what += " or the context window"
    tokens = f"{completion} tokens, by " if completion is not None else ""
    return f"{tokens}{what}" + (f", before {where} {asked}" if asked is not None else " (no max_tokens was asked for)")


def tokens_per_second(usage: dict[str, Any] | None, pieces_at: tuple[float, float] | None) -> str | None:
    """Completion tokens (thinking included) over the time from the first streamed piece to the
    last, e.g. "41.7"; None when unknown: not streamed, no token count, or no time between them."""
    completion = (usage or {}).get("completion_tokens")
    if pieces_at is None or not isinstance(completion, int) or isinstance(completion, bool) or completion <= 0:
        return None
    seconds = pieces_at[1] - pieces_at[0]
    return f"{completion / seconds:.1f}" if seconds > 0 else None


def describe_turn(replayed: int, model: str, usage: dict[str, Any] | None, seq: int | None, *,
                  limit: int | None = None, rate: str | None = None) -> str:
    """The -v line. `seq` None: the round was not saved (over the cap). An odd `limit` is said:
    replay is in whole rounds, so it rounds down (1 replays nothing)."""
    tokens = ""
    if usage and isinstance(usage.get("prompt_tokens"), int):
        tokens = f" · {usage['prompt_tokens']} prompt + {usage.get('completion_tokens', '?')} completion tokens"
    tokens += f" · {rate} tokens/s" if rate else " · tokens/s n/a"
    rounded = f" (limit {limit}, rounded down to whole rounds)" if limit is not None and limit % 2 else ""
    saved = f"saved as round {seq}" if seq is not None else "not saved"
    return f"replayed {replayed} message(s){rounded} · model {one_line(model, 200)}{tokens} · {saved}"
