import pytest

from eventlog import Caps, Store


class Warnings(list):
    """Collects the store's one-line warnings instead of printing them."""

    def __call__(self, message: str) -> None:
        assert "\n" not in message, f"a warning must be one line: {message!r}"
        self.append(message)

    def matching(self, text: str) -> list[str]:
        return [w for w in self if text in w]


@pytest.fixture
def warnings() -> Warnings:
    return Warnings()


@pytest.fixture
def root(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def make_store(root, warnings):
    """A store that refreshes history.json after every save (refresh_share=0), so the tests of
    P7 see it current; the rate limit has tests of its own."""

    def make(caps: Caps = Caps(), **kw) -> Store:
        kw.setdefault("refresh_share", 0)
        return Store(root, caps=caps, warn=warnings, **kw)

    return make
