"""The `bai` command line: click commands, endpoint client, wire types, settings."""
