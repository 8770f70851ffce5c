"""CMA-ES as one MPI job: rank 0 owns the optimizer, every rank evaluates.

Rank 0 cuts a generation into chunks (see evaluator.py) and serves them one at a time
to whichever rank asks next, so fast ranks take more and none idles while work
remains; rank 0 evaluates chunks too, while a dispatcher thread serves the others.
Waiting is done by polling with short sleeps, not MPI's busy-wait, so an
oversubscribed node (more ranks than cores) still makes progress.

Failures end the job within a bounded time: a rollout that raises is reported to rank
0 with its rank, candidate and seed; a rank that stops answering for
`controller.worker_timeout` seconds is named, and rank 0 aborts the whole job. Rerunning
the command resumes from the last checkpoint."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np

from wm.controller.evaluator import ChunkRunner, make_chunks, progress_bar, returns_matrix

POLL_SECONDS = 0.002
TAG_WORK, TAG_STOP, TAG_RESULT, TAG_ERROR = 1, 2, 3, 4


def mpi_world():
    """COMM_WORLD when launched with several ranks, else None (plain single process)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def wait_for_message(comm, source: int, timeout: float, what: str):
    """Poll (without spinning a core) until a message from `source` arrives; returns its status."""
    from mpi4py import MPI

    status = MPI.Status()
    deadline = time.monotonic() + timeout
    while not comm.Iprobe(source=source, tag=MPI.ANY_TAG, status=status):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(POLL_SECONDS)
    return status


def send_within(comm, message, dest: int, tag: int, timeout: float, what: str) -> None:
    """Send without blocking forever: a large message waits for its receiver to take it, and a
    receiver that died or froze never does."""
    request = comm.isend(message, dest=dest, tag=tag)
    deadline = time.monotonic() + timeout
    while not request.Test():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(POLL_SECONDS)


class RankFailure(RuntimeError):
    """A rank raised or went silent; the message names it."""


class MPIEvaluator:
    """Rank 0's side: the same interface as LocalEvaluator."""

    def __init__(self, comm, runner: ChunkRunner, worker_timeout: float):
        self.comm, self.runner, self.timeout = comm, runner, worker_timeout
        self.ranks = comm.Get_size()
        self.worker_busy = np.zeros(self.ranks)

    def evaluate(self, candidates, track_seeds, noise_seeds, training=True, progress=None):
        chunks = make_chunks(candidates, track_seeds, noise_seeds, self.runner.settings.envs_per_batch)
        bar = progress_bar(progress, len(candidates) * len(track_seeds))
        results: list = [None] * len(chunks)
        lock = threading.Lock()
        queue = list(range(len(chunks)))
        failure: list[BaseException] = []

        def take():
            with lock:
                return queue.pop(0) if queue and not failure else None

        def done(index: int, chunk_results) -> None:
            with lock:
                results[index] = chunk_results
                bar.update(len(chunk_results))

        dispatcher = threading.Thread(target=self._dispatch, args=(chunks, training, take, done, failure),
                                      daemon=True)
        dispatcher.start()
        try:
            while (index := take()) is not None:
                done(index, self.runner.run(chunks[index], training))
        except BaseException as exc:
            failure.append(RankFailure(f"rank 0: {exc}"))
        dispatcher.join()
        bar.close()
        if failure:
            raise failure[0]
        flat = [r for chunk_results in results for r in chunk_results]
        return returns_matrix(flat, len(candidates), len(track_seeds)), flat

    def _dispatch(self, chunks, training, take, done, failure) -> None:
        """Serve chunks to ranks 1..N-1 until none is left, then collect what is in flight."""
        from mpi4py import MPI

        in_flight: dict[int, tuple[int, float]] = {}  # rank -> (chunk index, sent at)
        sends = []  # pending non-blocking sends: a frozen rank must not block the dispatcher

        def give(rank: int, index: int) -> None:
            sends.append(self.comm.isend((index, chunks[index], training), dest=rank, tag=TAG_WORK))
            in_flight[rank] = (index, time.monotonic())

        for rank in range(1, self.ranks):
            if (index := take()) is not None:
                give(rank, index)
        status = MPI.Status()
        while in_flight and not failure:
            if not self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                now = time.monotonic()
                for rank, (index, sent) in in_flight.items():
                    if now - sent > self.timeout:
                        failure.append(RankFailure(
                            f"rank {rank} did not return chunk {index} within {self.timeout:.0f} s "
                            "(controller.worker_timeout): it died or hangs"))
                        return
                time.sleep(POLL_SECONDS)
                continue
            rank = status.Get_source()
            message = self.comm.recv(source=rank, tag=status.Get_tag())
            if status.Get_tag() == TAG_ERROR:
                failure.append(RankFailure(f"rank {rank}: {message}"))
                return
            index, chunk_results, busy = message
            done(index, chunk_results)
            self.worker_busy[rank] = busy
            del in_flight[rank]
            sends = [request for request in sends if not request.Test()]
            if (index := take()) is not None:
                give(rank, index)

    def busy_seconds(self) -> list[float]:
        return [self.runner.busy_seconds, *self.worker_busy[1:]]

    def close(self) -> None:
        for rank in range(1, self.ranks):
            send_within(self.comm, None, rank, TAG_STOP, self.timeout, f"rank {rank} did not take the stop message")


def serve(comm, runner: ChunkRunner, worker_timeout: float) -> None:
    """A worker rank's whole life: run the chunks rank 0 sends until it says stop."""
    rank = comm.Get_rank()
    while True:
        try:
            status = wait_for_message(comm, 0, worker_timeout,
                                      f"rank {rank}: no word from rank 0 for {worker_timeout:.0f} s")
        except TimeoutError as exc:
            print(f"train-controller: {exc}; aborting", flush=True)
            comm.Abort(3)
        message = comm.recv(source=0, tag=status.Get_tag())
        if status.Get_tag() == TAG_STOP:
            return
        index, chunk, training = message
        try:
            results = runner.run(chunk, training)
        except Exception as exc:
            message, tag = f"{exc}", TAG_ERROR
        else:
            message, tag = (index, results, runner.busy_seconds), TAG_RESULT
        try:
            send_within(comm, message, 0, tag, worker_timeout, f"rank {rank}: rank 0 did not take a result "
                                                               f"for {worker_timeout:.0f} s")
        except TimeoutError as exc:
            print(f"train-controller: {exc}; aborting", flush=True)
            comm.Abort(3)
        if tag == TAG_ERROR:
            return


def run_with_evaluator(runner: ChunkRunner, worker_timeout: float, body):
    """Call body(evaluator) on rank 0, or in the only process; other ranks serve chunks until
    rank 0 is done. Under MPI, a failure on rank 0 aborts every rank with the message printed."""
    from wm.controller.evaluator import LocalEvaluator

    comm = mpi_world()
    if comm is None:
        return body(LocalEvaluator(runner))
    # The launcher reports a dead process by its PID: this line maps PIDs to ranks in the job's log.
    print(f"rank {comm.Get_rank()} of {comm.Get_size()}: pid {os.getpid()} on {socket.gethostname()}", flush=True)
    if comm.Get_rank() != 0:
        serve(comm, runner, worker_timeout)
        return None
    evaluator = MPIEvaluator(comm, runner, worker_timeout)
    try:
        result = body(evaluator)
    except BaseException as exc:
        print(f"failed on rank 0: {type(exc).__name__}: {exc}", flush=True)
        comm.Abort(1)
    evaluator.close()
    return result
