"""Serial Numba kernels for these tests: they round thousands of tiny arrays, and launching parallel threads for each
costs milliseconds on a loaded two-core machine (microseconds serially). Restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import numba
import pytest


@pytest.fixture(autouse=True)
def _serial_numba() -> Iterator[None]:
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)
