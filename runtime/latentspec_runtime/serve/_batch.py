"""Dynamic micro-batching: concurrent requests to one entry share one ``Bundle.run``.

One worker per entry takes the first waiting request, then keeps collecting requests until the
batch holds ``max_batch`` rows or ``max_wait`` seconds have passed. It does not wait when no
other request for the entry is on its way (admitted but not yet queued), and a request that
arrives while nothing else of the entry is queued or running skips the worker, so a lone client
pays no extra latency. Requests whose items differ in shape, or whose unbatched inputs (a trip
count) differ, run as separate groups; a group that fails its input checks is rerun request by
request, so each request gets its own answer or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from .._bundle import Bundle
from .._manifest import BundleError, InputError
from ._entries import Entry, Prepared

Result = dict[str, np.ndarray] | Exception


@dataclass
class Job:
    """One request waiting for its share of a batch."""

    prepared: Prepared
    future: asyncio.Future[Result] = field(repr=False)


def run_group(bundle: Bundle, entry: Entry, jobs: list[Prepared]) -> list[Result]:
    """Run requests with equal keys as one batch; each gets its rows back (or its own error)."""
    if len(jobs) == 1:
        return [_run_one(bundle, entry, jobs[0])]
    feed: dict[str, np.ndarray] = {}
    for t in entry.inputs:
        arrays = [j.feed[t.name] for j in jobs]
        feed[t.name] = np.concatenate(arrays) if t.batched else arrays[0]
    try:
        out = bundle.run(entry.name, feed)
    except (InputError, BundleError):
        return [_run_one(bundle, entry, j) for j in jobs]
    total = sum(j.rows for j in jobs)
    results: list[Result] = []
    start = 0
    for j in jobs:
        stop = start + j.rows
        part = {k: v[start:stop] if v.ndim and v.shape[0] == total else v for k, v in out.items()}
        results.append(_unbatch(part, j))
        start = stop
    return results


def _run_one(bundle: Bundle, entry: Entry, job: Prepared) -> Result:
    try:
        return _unbatch(bundle.run(entry.name, job.feed), job)
    except (InputError, BundleError) as err:
        return err


def _unbatch(out: dict[str, np.ndarray], job: Prepared) -> dict[str, np.ndarray]:
    if not job.single:
        return out
    return {k: v[0] if v.ndim and v.shape[0] == 1 else v for k, v in out.items()}


def run_jobs(bundle: Bundle, entry: Entry, jobs: list[Prepared]) -> list[Result]:
    """Run a batch of requests, grouped by key, in arrival order within each group."""
    groups: dict[Any, list[int]] = {}
    for i, j in enumerate(jobs):
        groups.setdefault(j.key, []).append(i)
    results: list[Result | None] = [None] * len(jobs)
    for members in groups.values():
        for i, r in zip(members, run_group(bundle, entry, [jobs[i] for i in members])):
            results[i] = r
    return [r for r in results if r is not None]


class Batcher:
    """The queue and worker of one entry point.

    ``observe(requests, rows)`` is called once per run, for the batch-size metrics.
    """

    def __init__(
        self,
        bundle: Bundle,
        entry: Entry,
        max_batch: int,
        max_wait: float,
        observe: Callable[[int, int], None],
    ) -> None:
        self.bundle = bundle
        self.entry = entry
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.observe = observe
        self.enabled = entry.mergeable and max_batch > 1
        self._queue: asyncio.Queue[Job] | None = None
        self._coming = 0  # admitted requests not yet taken into a batch
        self._busy = False  # the worker is collecting or running a batch
        self._alone = 0  # requests running outside the worker
        self._task: asyncio.Task[None] | None = None

    def admit(self) -> None:
        """A request for this entry has arrived (its body may still be on its way)."""
        self._coming += 1

    def withdraw(self) -> None:
        """An admitted request failed before it was submitted."""
        self._coming -= 1

    async def submit(self, prepared: Prepared) -> Result:
        """Run ``prepared`` (alone, or merged with others) and return its outputs or error."""
        idle = not self._busy and not self._alone and (self._queue is None or self._queue.empty())
        if not self.enabled or (idle and self._coming == 1):  # nothing to merge with: skip the worker
            self._coming -= 1
            self._alone += 1
            self.observe(1, prepared.rows)
            try:
                return (await run_in_threadpool(run_jobs, self.bundle, self.entry, [prepared]))[0]
            finally:
                self._alone -= 1
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._work())
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Job(prepared, future))
        return await future

    async def close(self) -> None:
        """Stop the worker (after the server has finished every request)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        carry: Job | None = None
        while True:
            self._busy = carry is not None
            job = carry if carry is not None else await queue.get()
            self._busy = True
            if carry is None:
                self._coming -= 1
            carry = None
            batch, rows = [job], job.prepared.rows
            deadline = loop.time() + self.max_wait
            while rows < self.max_batch:
                if queue.empty():
                    if self._coming <= 0:
                        break  # nobody else is on the way: do not wait
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                else:
                    job = queue.get_nowait()
                self._coming -= 1
                if rows + job.prepared.rows > self.max_batch:
                    carry = job
                    break
                batch.append(job)
                rows += job.prepared.rows
            self.observe(len(batch), rows)
            try:
                results = await run_in_threadpool(run_jobs, self.bundle, self.entry, [j.prepared for j in batch])
            except Exception as err:  # a bug, not a user error: every request of the batch gets it
                results = [err] * len(batch)
            for j, r in zip(batch, results):
                if not j.future.done():
                    j.future.set_result(r)
