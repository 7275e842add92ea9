"""A thread-safe least-recently-used cache of rendered PNG bytes, bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable


class PngCache:
    """LRU map ``key -> bytes`` holding at most ``max_bytes`` in total.

    Example:
        >>> c = PngCache(max_bytes=10)
        >>> c.get_or_render("a", lambda: b"12345")
        b'12345'
        >>> "a" in c
        True
    """

    def __init__(self, *, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get_or_render(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The cached bytes for ``key``, or ``render()``'s, stored (two threads may both render once)."""
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return data
            self.misses += 1
        data = render()
        with self._lock:
            if key not in self._items:
                self._items[key] = data
                self._size += len(data)
            while self._size > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)
        return data
