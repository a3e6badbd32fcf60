"""verify.internal.progress: a tqdm bar on standard error, only on a terminal unless told otherwise."""
from __future__ import annotations

import io

import pytest

from verify.internal.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("env, tty, drawn", [(None, False, False), (None, True, True), ("0", True, False),
                                            ("1", False, True)])
def test_draws_on_a_terminal_or_when_the_environment_says_so(monkeypatch, env, tty, drawn):
    if env is None:
        monkeypatch.delenv("RNN_VERIFY_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("RNN_VERIFY_PROGRESS", env)
    stream = Terminal() if tty else io.StringIO()
    assert list(progress(iter(range(5)), total=5, desc="work", stream=stream)) == [0, 1, 2, 3, 4]
    text = stream.getvalue()
    assert ("work" in text and "5/5" in text) == drawn and (text == "") == (not drawn)


def test_explicit_switch_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("RNN_VERIFY_PROGRESS", "1")
    quiet = io.StringIO()
    assert list(progress([1, 2], stream=quiet, enabled=False)) == [1, 2] and quiet.getvalue() == ""
    monkeypatch.setenv("RNN_VERIFY_PROGRESS", "0")
    loud = io.StringIO()
    assert list(progress([1, 2], desc="x", stream=loud, enabled=True)) == [1, 2] and "2/2" in loud.getvalue()


def test_items_pass_through_lazily():
    seen = []

    def gen():
        for k in range(3):
            seen.append(k)
            yield k

    it = progress(gen(), desc="lazy", enabled=False)
    assert seen == [] and next(it) == 0 and seen == [0]
