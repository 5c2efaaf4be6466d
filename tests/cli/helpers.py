"""`bai` in-process, as the console script runs it, for the command tests."""

from __future__ import annotations

import click
from click.testing import CliRunner

from cli import main as cli_main


@click.command(add_help_option=False, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def entry(ctx: click.Context) -> None:
    """The console script's entry, for CliRunner: `cli.main.run` maps failures to exit codes."""
    ctx.exit(cli_main.run(ctx.args))


def bai(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """Run `bai` in-process; returns (code, stdout, stderr)."""
    result = CliRunner().invoke(entry, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr
