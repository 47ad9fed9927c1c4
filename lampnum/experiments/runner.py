"""Running the cells of a sweep: in this process, in local worker processes, or on a Dask cluster; resumable.

:func:`run_grid` computes each dataset's float64 reference once (cached in the sweep folder, see
:func:`lampnum.experiments.datasets.reference`), skips the cells whose key is already in the folder's log,
runs the others (each cell one forward pass over all its sequences as one batch), appends each row to the
log as it arrives, and writes ``results.csv`` and ``results.json`` in grid order at the end.

A cell is computed by :func:`run_cell`, a plain function of plain arguments, so the same code runs in a
``ProcessPoolExecutor`` (spawned processes) or on Dask workers (``scheduler`` = a Dask distributed
scheduler's address). Each worker process keeps the model and the reference logits it has loaded in a small
process-local cache, so consecutive cells on one worker do not reload them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from lampnum.experiments import results
from lampnum.experiments.datasets import Dataset, reference
from lampnum.experiments.grid import Cell

__all__ = ["run_cell", "run_grid", "measure"]


@functools.lru_cache(maxsize=2)
def _model(model_path: str | None):  # type: ignore[no-untyped-def]
    import lampnum.gpt2 as g

    return g.load_default() if model_path is None else g.load(model_path)


@functools.lru_cache(maxsize=2)
def _reference(dataset: Dataset, folder: str | None, model_path: str | None) -> np.ndarray:
    return reference(dataset, None if folder is None else Path(folder), _model(model_path), save=False)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def measure(ref: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """(KL, flip rate) of ``logits`` [n_seq, n_tokens, vocab] against ``ref``, from one fused pass per
    position; every position weighs the same."""
    from lampnum.gpt2.metrics import kl_and_flip_rate

    return kl_and_flip_rate(np.asarray(ref), logits)


def run_cell(
    cell: Mapping[str, object],
    dataset: Mapping[str, object],
    folder: str | None = None,
    model_path: str | None = None,
    threads: int | None = None,
) -> dict[str, object]:
    """One cell (as :meth:`Cell.to_dict`) on one dataset (as :meth:`Dataset.to_dict`): its result row.

    ``folder``: where the dataset's reference is cached (computed here, not saved, when absent);
    ``threads``: Numba threads of this process (None: leave as is).
    """
    _set_threads(threads)
    c, d = Cell.from_dict(dict(cell)), Dataset(**dataset)  # type: ignore[arg-type]
    model = _model(model_path)
    ref = _reference(d, folder, model_path)
    t0 = time.perf_counter()
    out = model.run(d.ids(), c.policy())
    seconds = time.perf_counter() - t0
    kl, flip = measure(ref, out.logits)
    stats = out.stats
    layer_rates = {
        f"{'-' if layer is None else layer}/{site}": rate for (layer, site), rate in sorted(
            stats.recompute_rate.items(), key=lambda kv: (kv[0][1], -1 if kv[0][0] is None else kv[0][0])
        )
    }  # fmt: skip
    return {
        "key": c.key(),
        **c.to_dict(),
        "dataset_path": d.path,
        "n_seq": d.n_seq,
        "n_tokens": d.n_tokens,
        "shuffle_seed": d.shuffle_seed,
        "policy": c.policy().name,
        "kl": kl,
        "flip_rate": flip,
        "recompute_rate": out.recompute_rate,
        "multiply_add_fraction": out.multiply_add_fraction,
        "seconds": seconds,
        "lamp_seconds": sum(v for k, v in stats.seconds.items() if k.startswith("lamp:")),
        "layer_rates": layer_rates,
    }


def _local(
    jobs: Sequence[tuple[object, ...]], workers: int, threads: int | None
) -> Iterator[dict[str, object]]:
    if workers <= 1:
        for job in jobs:
            yield run_cell(*job, threads)  # type: ignore[arg-type]
        return
    spawn = multiprocessing.get_context("spawn")  # Numba's thread pools are not fork-safe
    with _blas_threads_of_children(threads), cf.ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        futures = [pool.submit(run_cell, *job, threads) for job in jobs]  # type: ignore[arg-type]
        for f in cf.as_completed(futures):
            yield f.result()


_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _blas_threads_of_children(threads: int | None) -> Iterator[None]:
    """While the worker processes start, give them ``threads`` BLAS threads too (BLAS libraries read these
    variables once, when they load; a spawned child inherits the parent's environment): otherwise every worker's
    BLAS starts one thread per core, and W workers on C cores run W·C threads that spin for each other. The
    parent's environment is restored afterwards."""
    if threads is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in _BLAS_THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in _BLAS_THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _dask(jobs: Sequence[tuple[object, ...]], scheduler: object, threads: int | None) -> Iterator[dict[str, object]]:
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(str(scheduler))
    try:
        futures = [client.submit(run_cell, *job, threads, pure=False) for job in jobs]
        for f in as_completed(futures):
            yield f.result()
    finally:
        if client is not scheduler:
            client.close()


def run_grid(
    cells: Iterable[Cell],
    datasets: Mapping[str, Dataset],
    folder: Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    scheduler: object = None,
    model_path: str | None = None,
    progress: bool = True,
    on_row: Callable[[dict[str, object]], None] | None = None,
) -> list[dict[str, object]]:
    """Run every cell not yet in ``folder``'s log; return all rows of ``cells`` in their order.

    ``datasets`` maps each cell's ``dataset`` label to its :class:`Dataset`. ``workers`` > 1 runs cells in
    that many spawned local processes; ``scheduler`` (an address like ``tcp://127.0.0.1:8786``, or a
    ``distributed.Client``) runs them on a Dask cluster instead. ``threads``: Numba threads per worker.
    ``progress``: a tqdm bar on standard error.
    """
    cells = list(cells)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    missing = sorted({c.dataset for c in cells} - set(datasets))
    if missing:
        raise ValueError(f"cells name datasets that are not given: {missing}")
    done = results.read_log(folder)
    todo = [c for c in cells if c.key() not in done]
    for label in sorted({c.dataset for c in todo}):  # the reference once per dataset, before any cell
        reference(datasets[label], folder, _model(model_path))
    jobs = [(c.to_dict(), datasets[c.dataset].to_dict(), str(folder), model_path) for c in todo]
    rows = _dask(jobs, scheduler, threads) if scheduler is not None else _local(jobs, workers, threads)
    from tqdm import tqdm

    with tqdm(total=len(cells), initial=len(cells) - len(todo), disable=not progress, unit="cell") as bar:
        for row in rows:
            results.append_row(folder, row)
            done[str(row["key"])] = row
            if on_row is not None:
                on_row(row)
            bar.update()
    ordered = [done[c.key()] for c in cells]
    results.write_csv(folder / results.CSV, ordered)
    results.write_json(folder / results.JSON, ordered)
    return ordered
