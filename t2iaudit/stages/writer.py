"""One background thread that runs a stage's writes in order while the caller makes the next shard."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType


class OrderedWriter:
    """Runs jobs on one thread, one at a time, in the order they were submitted.

    The generate stage hands it the writes and the commit of shard k (encoding, fsyncs, appends)
    and makes shard k+1 meanwhile: the fsyncs wait for the disk, not for the model. One thread
    keeps the appends in plan order, so the records are byte-identical to a sequential loop.

    - At most ``waiting`` jobs wait behind the one running (``submit`` blocks beyond that), so the
      memory held by made-but-unwritten shards stays flat.
    - The first exception a job raises stops the writes: the jobs after it are dropped, and the
      caller gets that exception (the same object) from its next ``check``, ``submit`` or from
      leaving the ``with`` block.
    - Leaving the ``with`` block waits for the submitted jobs, so what was made is written. When
      the block itself raised, a writer's exception wins if there is one (it came from an earlier
      shard); otherwise the block's exception goes on.

    Example::

        with OrderedWriter("generate") as writer:
            for shard in shards:
                writer.check()  # a failed write stops the work before the next shard
                made = make(shard)
                writer.submit(lambda made=made: write(made))
    """

    def __init__(self, name: str, waiting: int = 1) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=waiting)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"t2iaudit-writer-{name}")

    def __enter__(self) -> OrderedWriter:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._jobs.put(None)  # after every submitted job
        self._thread.join()
        if self._error is not None and (error is None or isinstance(error, Exception)):
            raise self._error

    def check(self) -> None:
        """Raise the exception of a failed job, if any."""
        if self._error is not None:
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` after the others (blocks while ``waiting`` jobs wait); raise a failed job's
        exception instead of queueing when there is one."""
        self.check()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is not None:
                continue  # drop the jobs behind a failed one; keep taking them so submit never blocks
            try:
                job()
            except BaseException as e:  # handed to the caller's thread
                self._error = e
