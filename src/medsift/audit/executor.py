"""One executor for per-image work: joblib processes on this machine, or a Dask cluster.

Rows are sent in batches; results stream back in order and only the small features are kept, so
memory stays flat in the number of images.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

from medsift.errors import ConfigError

BATCH = 64


def _batches(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    for i in range(0, len(rows), size):
        yield list(rows[i:i + size])


def map_batches(fn: Callable[[list], list], rows: Sequence[Mapping[str, Any]], *, n_jobs: int = 2,
                scheduler: str | None = None, batch_size: int = BATCH) -> Iterator[Any]:
    """Apply ``fn`` (list of rows -> list of results) to batches; yield per-row results in input order.

    Args:
        fn: a picklable, module-level function.
        rows: row mappings.
        n_jobs: joblib worker processes (1 = run here, no processes).
        scheduler: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``; None = joblib.
        batch_size: rows per task.
    """
    if n_jobs < 1:
        raise ConfigError(f"n_jobs must be >= 1; got {n_jobs}")
    if scheduler is not None:
        yield from _dask_map(fn, rows, scheduler, batch_size)
        return
    if n_jobs == 1 or len(rows) <= batch_size:
        for batch in _batches(rows, batch_size):
            yield from fn(batch)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, return_as="generator", pre_dispatch="2*n_jobs")
    for out in parallel(delayed(fn)(b) for b in _batches(rows, batch_size)):
        yield from out


def _dask_map(fn: Callable, rows: Sequence, scheduler: Any, batch_size: int) -> Iterator[Any]:
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'medsift[dask]'") from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        window = 4 * max(len(client.scheduler_info().get("workers", {})), 1)
        batches = _batches(rows, batch_size)
        pending = []
        for batch in batches:  # bounded window of in-flight tasks keeps memory flat
            pending.append(client.submit(fn, batch, pure=False))
            if len(pending) >= window:
                yield from pending.pop(0).result()
        for fut in pending:
            yield from fut.result()
    finally:
        if own:
            client.close()
