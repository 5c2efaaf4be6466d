"""Keeping a request inside the model's context window.

Replayed rounds are dropped oldest first, whole, until the estimated prompt leaves room for
the answer; the new message is never cut. The estimate uses what each round recorded: its
`completion_tokens` give the answer's size in tokens, and the ratio of characters to those
tokens (over the recorded rounds) sizes everything else. Trimming changes what is sent,
never what is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eventlog import RoundEvent

DEFAULT_CHARS_PER_TOKEN = 3.0  # on the safe side of English (about 4) for an uncalibrated model
PER_MESSAGE_TOKENS = 6  # role markers and separators a chat template adds around each message
SAFETY = 0.05  # a share of the window kept free for estimation error


@dataclass(frozen=True)
class Fit:
    rounds: list[RoundEvent]  # the rounds to replay, oldest first
    left_out: int  # rounds of the replay left out to fit
    estimate: int  # estimated prompt tokens with them


def chars_per_token(rounds: Sequence[RoundEvent]) -> float:
    """Characters per token of this model on this conversation, from the recorded rounds:
    best from what each prompt held (`prompt_chars`) against its `usage.prompt_tokens` (the
    template's own tokens make it err on the safe side), else from the answers' characters
    against their `completion_tokens`, else a cautious default."""
    recent = list(rounds)[-20:]
    for chars_of, tokens_of, enough in (
        (lambda r: r.prompt_chars, lambda r: _usage(r, "prompt_tokens"), 64),
        (lambda r: len(r.assistant), lambda r: _usage(r, "completion_tokens"), 64),
    ):
        chars = tokens = 0
        for r in recent:
            c, t = chars_of(r), tokens_of(r)
            if c and t and t > 0:
                chars += c
                tokens += t
        if tokens >= enough:
            return min(max(chars / tokens, 1.5), 6.0)
    return DEFAULT_CHARS_PER_TOKEN


def text_tokens(text: str, ratio: float) -> int:
    return int(len(text) / ratio) + 1 + PER_MESSAGE_TOKENS


def round_tokens(r: RoundEvent, ratio: float) -> int:
    completion = _usage(r, "completion_tokens")
    answer = completion + PER_MESSAGE_TOKENS if completion and completion > 0 else text_tokens(r.assistant, ratio)
    return text_tokens(r.user, ratio) + answer


def answer_reserve(window: int, max_tokens: int | None) -> int:
    """Room kept for the answer: max_tokens when given, else a quarter of the window (<= 1024)."""
    return max_tokens if max_tokens is not None else min(window // 4, 1024)


def fit_rounds(
    rounds: list[RoundEvent], window: int | None, max_tokens: int | None, system: str | None,
    message: str, calibration: Sequence[RoundEvent] = (),
) -> Fit:
    """The newest of `rounds` whose estimated prompt fits `window` with room for the answer."""
    ratio = chars_per_token(calibration or rounds)
    fixed = text_tokens(message, ratio) + (text_tokens(system, ratio) if system else 0)
    costs = [round_tokens(r, ratio) for r in rounds]
    total = fixed + sum(costs)
    if window is None:
        return Fit(rounds, 0, total)
    budget = window - answer_reserve(window, max_tokens) - int(window * SAFETY)
    start = 0
    while start < len(rounds) and total > budget:
        total -= costs[start]
        start += 1
    return Fit(rounds[start:], start, total)


def shrink_after_refusal(rounds: list[RoundEvent], excess: int | None, calibration: Sequence[RoundEvent] = ()) -> list[RoundEvent]:
    """Fewer rounds after the server said the prompt was too long: enough to cover `excess`
    tokens by the server's own numbers (with a margin), else half of them."""
    if not rounds:
        return rounds
    if excess is None:
        return rounds[len(rounds) // 2 + len(rounds) % 2 :]
    ratio = chars_per_token(calibration or rounds)
    need = int(excess * 1.1) + 16
    dropped = start = 0
    while start < len(rounds) and dropped < need:
        dropped += round_tokens(rounds[start], ratio)
        start += 1
    return rounds[start:]


def _usage(r: RoundEvent, key: str) -> int | None:
    value = (r.usage or {}).get(key)
    return value if isinstance(value, int) else None
