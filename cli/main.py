"""The `bai` console script: the command tree, and the one place failures become exit codes.

Exit codes (DESIGN.md): 0 answered and saved; 1 failed, nothing saved; 2 usage error;
3 answered without assistant text, nothing saved; 4 answered, but not saved: the round alone
is larger than the deployment's history cap (history_cap / history_max_bytes); 130
interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP): nothing saved, unless
the line says the signal came while the answer was being saved (it then is).
Every failure is one line on stderr; a traceback only with BAI_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import click

from ._cmd_chat import chat
from ._cmd_config import chat_cache, chat_config
from ._cmd_history import chat_history
from ._cmd_models import models
from ._exitcodes import FAILED, INTERRUPTED, USAGE
from ._signals import NAMES, Terminated, on_main_thread, outcome, terminating

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="bai-chat", prog_name="bai", message="%(prog)s %(version)s")
def bai() -> None:
    """Chat with deployed OpenAI-compatible endpoints; each deployment remembers its conversation.

    \b
    Example:
      bai deployment chat-config set my-llm --endpoint http://127.0.0.1:8000
      bai deployment chat my-llm "Name three prime numbers."
      bai deployment chat my-llm "Now add them up."      # sees the first round

    Shell completion: eval "$(_BAI_COMPLETE=bash_source bai)" (zsh_source, fish_source).
    """


@bai.group(context_settings=CONTEXT)
def deployment() -> None:
    """Chat with a deployment and manage its history, settings and cache.

    \b
    Example:
      bai deployment chat-config set my-llm --endpoint http://127.0.0.1:8000
      bai deployment chat my-llm "Hello!"
      bai deployment chat-history show my-llm
    """


deployment.add_command(chat)
deployment.add_command(chat_config)
deployment.add_command(chat_cache)
deployment.add_command(chat_history)
deployment.add_command(models)


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:

    if "_BAI_COMPLETE" in os.environ:  # click's shell-completion protocol lives in its main()
        bai.main(args=argv, prog_name="bai")
    import _signal as signal  # as in _signals: without the enums `signal` builds on import

    from . import _cursor

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler and on_main_thread():
        signal.signal(signal.SIGINT, _cursor.on_sigint)  # the same KeyboardInterrupt, knowing where ^C landed
    try:
        with terminating():
            return _run(argv)
    except Terminated as e:  # arrived after _run's handlers, while it returned: still one line
        _said(e)
        return e.exit_code


def _said(e: Terminated) -> None:
    try:
        click.echo(f"bai: {NAMES.get(e.signum, f'signal {e.signum}')}; {outcome(e.saved)}", err=True)
    except (OSError, ValueError):
        pass  # the terminal is gone (SIGHUP): the exit code says it


def _run(argv: list[str] | None) -> int:
    try:
        # Not bai.main(): it prints a stray newline on Ctrl-C; errors are reported below instead.
        with bai.make_context("bai", list(sys.argv[1:] if argv is None else argv)) as ctx:
            result = bai.invoke(ctx)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:  # `bai`, `bai deployment`, a group alone: its help
        click.echo(e.ctx.get_help() if e.ctx else "")
        return 0
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        _error(f"{e.format_message()}{hint}")
        return USAGE
    except click.ClickException as e:
        _error(e.format_message())
        return e.exit_code
    except Terminated as e:
        _said(e)
        return e.exit_code
    except (KeyboardInterrupt, click.Abort) as e:
        from ._cursor import newline_before_interrupted

        # An answer in progress ended its line; a ^C the terminal echoed may still need one.
        click.echo(f"{newline_before_interrupted()}bai: interrupted; {outcome(getattr(e, 'saved', False))}", err=True)
        return INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_pipe()
        return FAILED
    except Exception as e:
        known = _known_error(e)
        if known is not None:
            _error(str(e))
            if os.environ.get("BAI_DEBUG"):  # after the one line, the details asked for
                import traceback

                traceback.print_exc()
            return known
        if os.environ.get("BAI_DEBUG"):  # the last line of defence: never a traceback for a user
            raise
        _error(f"internal error: {type(e).__name__}: {e} (BAI_DEBUG=1 shows details)")
        return FAILED


def _known_error(e: Exception) -> int | None:
    """The exit code of a store or endpoint error, else None. Their modules are looked up, not
    imported: such an error can only exist if its module was loaded, and `bai --help` must not
    pay for loading them."""
    store_errors = sys.modules.get("eventlog._errors")
    if store_errors is not None and isinstance(e, store_errors.StoreError):
        return FAILED
    endpoint_errors = sys.modules.get("cli.endpoint._errors")
    if endpoint_errors is not None and isinstance(e, endpoint_errors.EndpointError):
        return e.exit_code  # type: ignore[attr-defined]
    return None


def _error(message: str) -> None:
    from ._app import use_color
    from .endpoint._text import one_line  # whitespace collapsed: every error is one line

    click.secho(f"bai: error: {one_line(message, limit=2000)}", err=True, fg="red", color=use_color())


def _quiet_broken_pipe() -> None:
    # stdout was closed early (`bai ... | head`): point it at devnull so exit does not complain.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
