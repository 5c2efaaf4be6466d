"""Harness that installs and runs real OpenAI-compatible servers for end-to-end tests."""
