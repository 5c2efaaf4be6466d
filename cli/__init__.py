"""The `bai` command line: click commands, endpoint client, wire types, settings."""

__version__ = "0.1.0"  # as in pyproject.toml (a test checks they agree)
