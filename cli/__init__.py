"""The `bai` command line: click commands, chat turns, settings; the endpoint client is the
`cli.endpoint` subpackage (no click, no store)."""

__version__ = "0.1.0"  # as in pyproject.toml (a test checks they agree)
