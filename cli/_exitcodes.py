"""Exit codes of `bai` (DESIGN.md, "Errors and exit codes")."""

OK = 0  # answered; the round is saved
FAILED = 1  # network, HTTP error, invalid response, store error; nothing saved
USAGE = 2  # usage error
NO_TEXT = 3  # answered without assistant text (tool call, refusal, empty); nothing saved
INTERRUPTED = 130  # Ctrl-C; nothing saved
