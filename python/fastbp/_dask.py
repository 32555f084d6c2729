"""The dask worker plugin behind :func:`fastbp.distributed.budget_dask_threads` (imported only
when dask.distributed is installed)."""
from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from .distributed import _host, threads_per_rank

__all__ = ["ThreadBudget"]


class ThreadBudget(WorkerPlugin):
    """Sets fastbp's threads in every worker to :func:`threads_per_rank` of the worker
    threads sharing its machine.

    ``per_host`` maps a host to the worker threads running on it; a worker on a host not
    listed (one that joins later) counts its own threads only. Workers of one process
    (``LocalCluster(processes=False)``) share the process-wide count, which they all set to
    the same value.
    """

    name = "fastbp-thread-budget"

    def __init__(self, per_host: dict[str, int] | None = None) -> None:
        self.per_host = dict(per_host or {})

    def setup(self, worker: Any) -> None:
        """Set the thread count in the worker's process (dask calls it on every worker)."""
        from . import _runtime

        local = self.per_host.get(_host(worker.address), int(worker.state.nthreads))
        _runtime._set_threads(threads_per_rank(local))
