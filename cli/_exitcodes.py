"""Exit codes of `bai` (DESIGN.md, "Errors and exit codes")."""

OK = 0  # answered; the round is saved
FAILED = 1  # network, HTTP error, invalid response, store error; nothing saved
USAGE = 2  # usage error
NO_TEXT = 3  # answered without assistant text (tool call, refusal, empty); nothing saved
NOT_SAVED = 4  # answered, but the round alone is larger than the deployment's history cap: not saved
INTERRUPTED = 130  # Ctrl-C; nothing saved (128 + SIGINT)
HANGUP = 129  # SIGHUP (the terminal went away): 128 + SIGHUP
TERMINATED = 143  # SIGTERM: 128 + SIGTERM
