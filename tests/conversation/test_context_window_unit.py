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


def test_prompt_tokens_calibrate_over_short_answers():
    # helper-found case: two ~1700-character rounds sent alone cost 269 prompt tokens each; their
    # answers were 8 characters in 4 tokens. The answers alone would suggest 2 chars/token and
    # leave everything out; what the prompts cost says a round is ~300 tokens, so one fits in 512.
    user = "round 1: " + "apple banana cherry " * 85
    rounds = [RoundEvent(v=1, seq=i, deployment="d", ts="t", user=user, assistant="round 1:",
                         usage={"prompt_tokens": 269, "completion_tokens": 4}, prompt_chars=len(user))
              for i in (1, 2)]
    assert chars_per_token(rounds) > 5
    fit = fit_rounds(rounds, 512, 4, None, "hi")
    assert fit.rounds == rounds[1:] and fit.left_out == 1


def test_too_few_recorded_tokens_fall_back_to_the_default():
    r = RoundEvent(v=1, seq=1, deployment="d", ts="t", user="u", assistant="ab",
                   usage={"prompt_tokens": 5, "completion_tokens": 1}, prompt_chars=10)
    assert chars_per_token([r]) == DEFAULT_CHARS_PER_TOKEN
