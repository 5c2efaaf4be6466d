"""Fitting replayed rounds into the context window: oldest whole rounds go first, the new
message is never cut, and the recorded token counts drive the estimate."""

from eventlog import RoundEvent
from cli._context_window import (
    DEFAULT_CHARS_PER_TOKEN, answer_reserve, chars_per_token, fit_rounds, round_tokens, shrink_after_refusal,
)


def _round(seq, user="u" * 300, assistant="a" * 300, completion=None):
    usage = {"prompt_tokens": 10, "completion_tokens": completion} if completion is not None else None
    return RoundEvent(v=1, seq=seq, deployment="d", ts="t", user=user, assistant=assistant, usage=usage)


def test_no_window_keeps_everything():
    rounds = [_round(i) for i in range(1, 6)]
    fit = fit_rounds(rounds, None, 100, None, "hi")
    assert fit.rounds == rounds and fit.left_out == 0


def test_oldest_whole_rounds_go_first_and_the_rest_fits():
    rounds = [_round(i) for i in range(1, 21)]
    fit = fit_rounds(rounds, 2048, 256, "be brief", "the new message")
    assert 0 < fit.left_out < 20
    assert fit.rounds == rounds[fit.left_out :]  # a suffix: newest kept, order kept
    assert fit.estimate <= 2048 - 256


def test_the_new_message_is_never_cut_even_when_nothing_fits():
    message = "m" * 10_000
    fit = fit_rounds([_round(1), _round(2)], 512, 64, None, message)
    assert fit.rounds == [] and fit.left_out == 2  # all history left out, the message stays whole


def test_recorded_completion_tokens_calibrate_the_estimate():
    # An answer of 300 characters that cost 300 tokens (1 char/token, e.g. CJK) weighs far more
    # than the default guess: fewer rounds fit.
    dense = [_round(i, completion=300) for i in range(1, 21)]
    sparse = [_round(i, completion=50) for i in range(1, 21)]
    assert chars_per_token(dense) == 1.5 and chars_per_token(sparse) == 6.0
    assert chars_per_token([_round(1)]) == DEFAULT_CHARS_PER_TOKEN
    assert round_tokens(dense[0], chars_per_token(dense)) > round_tokens(sparse[0], chars_per_token(sparse))
    assert len(fit_rounds(dense, 4096, 256, None, "q").rounds) < len(fit_rounds(sparse, 4096, 256, None, "q").rounds)


def test_answer_reserve():
    assert answer_reserve(8192, 100) == 100
    assert answer_reserve(512, None) == 128 and answer_reserve(100_000, None) == 1024


def test_shrink_by_the_servers_numbers_or_by_half():
    rounds = [_round(i) for i in range(1, 11)]
    assert shrink_after_refusal(rounds, None) == rounds[5:]
    small = shrink_after_refusal(rounds, 10)
    assert small == rounds[1:]  # 10 tokens over: one old round is enough
    assert shrink_after_refusal(rounds, 100_000) == []
    assert shrink_after_refusal([], 50) == []
