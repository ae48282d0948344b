"""A rich progress bar, or nothing, behind one plain ``advance()`` callable."""

from __future__ import annotations


class progress_bar:
    """A rich progress bar (or nothing) exposing a plain ``advance()`` callable."""

    def __init__(self, enabled: bool, total: int, description: str):
        self.enabled = enabled
        self.total = total
        self.description = description
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n=1: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda n=1: self._bar.advance(task, n)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
