"""Entry point of the `bai` console script."""


def main() -> None:  # replaced by the click group in the commands issue
    raise SystemExit("bai: not implemented yet")
