"""Rich progress bars for long work; silent when not attached to a terminal unless asked."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")


@contextmanager
def progress_bar(*, transient: bool = False) -> Iterator[Progress]:
    """A Progress with count, rate-friendly columns and ETA."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
    ) as progress:
        yield progress


def track(items: Iterable[T], *, description: str, total: int | None = None, show: bool = True) -> Iterator[T]:
    """Iterate ``items`` with a progress bar (no bar when ``show`` is False)."""
    if not show:
        yield from items
        return
    with progress_bar() as progress:
        task = progress.add_task(description, total=total if total is not None else _len(items))
        for item in items:
            yield item
            progress.advance(task)


def _len(items: Iterable) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None
