"""One line per URL on stderr, for fetch runs slow enough to wonder about.

A run that is over within a second says nothing. Once it has taken a second, each URL
gets one line when it starts (the URL in flight at that moment gets its line then), so a
slow page, a long list or a hanging server shows what is being waited for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from llmtools.notices import note

AFTER_S = 1.0

Result = TypeVar("Result")


def announce_slow(urls: list[str], results: Iterable[Result]) -> Iterator[Result]:
    """`results` (one per URL, in order) passed through, with a line for each slow one."""
    started = time.monotonic()
    iterator = iter(results)
    for index, url in enumerate(urls, start=1):
        position = f" ({index}/{len(urls)})" if len(urls) > 1 else ""
        line = f"fetching {url}{position}"
        delay = AFTER_S - (time.monotonic() - started)
        timer = None
        if delay <= 0:
            note(line)
        else:
            timer = threading.Timer(delay, note, [line])
            timer.daemon = True
            timer.start()
        try:
            result = next(iterator)
        except StopIteration:
            return
        finally:
            if timer is not None:
                timer.cancel()
        yield result
