"""Progress: Keras' bars on a terminal, a line per epoch in a log."""

import io
import sys

from ats.training.trainer import progress_bars


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bars_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert progress_bars(1) == 1
    assert progress_bars(0) == 0
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a file or a pipe
    assert progress_bars(1) == 0
