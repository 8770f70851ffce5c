"""The MPI work farm shared by CMA-ES and `wm evaluate`: rank 0 owns the work (the optimizer, or
the evaluation), every rank runs episodes.

Rank 0 cuts the episodes into chunks (see runner.py) and serves them one at a time
to whichever rank asks next, so fast ranks take more and none idles while work
remains; rank 0 evaluates chunks too, while a dispatcher thread serves the others.
Waiting is done by polling with short sleeps, not MPI's busy-wait, so an
oversubscribed node (more ranks than cores) still makes progress.

Failures end the job within a bounded time, naming the rank: a rollout that raises is
reported to rank 0 with its rank, candidate and seed. A rank that dies or hangs is found
by silence: a working rank sends a heartbeat every few seconds (from a thread, so a long
chunk does not look like a hang), and rank 0 aborts the job when one has been silent for
`worker_timeout` seconds (controller.worker_timeout or evaluate.worker_timeout); workers
likewise give up on a silent rank 0.
(mpiexec may end the job sooner when a process dies, reporting a PID; every rank prints
its PID and host at start-up to map it to a rank, and each worker also tells rank 0, so that
the failure messages name the rank's PID and host too.) Rerunning the command resumes from the last
checkpoint."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np

from wm.episodes.runner import ChunkRunner, EpisodeResult, make_chunks, returns_matrix
from wm.metrics import progress

POLL_SECONDS = 0.002
# The launcher forwards a rank's output through a pipe that MPI_Abort races with: a message
# printed just before the abort can be lost on a busy node unless the launcher gets a moment.
ABORT_GRACE_SECONDS = 2.0
TAG_WORK, TAG_STOP, TAG_RESULT, TAG_ERROR, TAG_HEARTBEAT, TAG_HELLO = 1, 2, 3, 4, 5, 6


def mpi_world():
    """COMM_WORLD when launched with several ranks, else None (plain single process)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def abort(comm, message: str, code: int) -> None:
    """Print why (stdout and stderr, both reach the job's log) and end every rank of the job."""
    import sys

    print(message, flush=True)
    print(message, file=sys.stderr, flush=True)
    time.sleep(ABORT_GRACE_SECONDS)
    comm.Abort(code)
    # MPI_Abort returns (MPICH under mpiexec and under srun's PMI2 alike): it asks the launcher to end the
    # job and the launcher kills the ranks a moment later. Running on meanwhile would run the caller's
    # code past its failure (a second abort, a confusing traceback in the job's log): end here.
    os._exit(code)


def progress_bar(desc: str | None, total: int):
    """Rank 0's bar over the episodes of one evaluate() call (none when desc is None); in a log file,
    a line at least every wm.metrics.LOG_SECONDS, even while a long chunk runs."""
    return progress(total=total, desc=desc, unit="episode", disable=desc is None)


def heartbeat_interval(timeout: float) -> float:
    return min(5.0, timeout / 4)


class RankFailure(RuntimeError):
    """A rank raised or went silent; the message names it."""


class Heartbeat:
    """Sends a small message to `dest` every interval until stopped (a thread)."""

    def __init__(self, comm, dest: int, interval: float):
        self.comm, self.dest, self.interval = comm, dest, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        requests = []
        while not self.stopped.wait(self.interval):
            requests = [r for r in requests if not r.Test()]
            requests.append(self.comm.isend(None, dest=self.dest, tag=TAG_HEARTBEAT))

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


class LocalFarm:
    """All chunks in this one process (no MPI, or a single rank)."""

    ranks = 1

    def __init__(self, runner: ChunkRunner):
        self.runner = runner

    def evaluate(self, candidates: np.ndarray, track_seeds: list[int], noise_seeds: list[int],
                 training: bool = True, progress: str | None = None) -> tuple[np.ndarray, list[EpisodeResult]]:
        """Returns (returns of shape (candidates, rollouts), every episode's result);
        `progress` names a progress bar over episodes."""
        chunks = make_chunks(candidates, track_seeds, noise_seeds, self.runner.chunk_size(training))
        results = []
        with progress_bar(progress, len(candidates) * len(track_seeds)) as bar:
            for chunk in chunks:
                results += self.runner.run(chunk, training)
                bar.update(len(chunk))
        return returns_matrix(results, len(candidates), len(track_seeds)), results

    def busy_seconds(self) -> list[float]:
        return [self.runner.busy_seconds]

    def close(self) -> None:
        pass


class MPIFarm:
    """Rank 0's side: the same interface as LocalFarm."""

    def __init__(self, comm, runner: ChunkRunner, worker_timeout: float, knob: str = "worker_timeout"):
        self.comm, self.runner, self.timeout, self.knob = comm, runner, worker_timeout, knob
        self.ranks = comm.Get_size()
        self.worker_busy = np.zeros(self.ranks)
        self.pending_sends: list = []  # non-blocking sends: a frozen rank must not block rank 0
        self.places: dict[int, tuple[int, str]] = {}  # rank -> (pid, host), from each worker's hello

    def where(self, rank: int) -> str:
        """'; rank R is pid P on HOST' for a failure message, once rank R's hello has arrived."""
        if rank not in self.places:
            return ""
        pid, host = self.places[rank]
        return f"; rank {rank} is pid {pid} on {host}"

    def _send(self, message, rank: int, tag: int) -> None:
        self.pending_sends = [r for r in self.pending_sends if not r.Test()]
        self.pending_sends.append(self.comm.isend(message, dest=rank, tag=tag))

    def evaluate(self, candidates, track_seeds, noise_seeds, training=True, progress=None):
        chunks = make_chunks(candidates, track_seeds, noise_seeds, self.runner.chunk_size(training))
        bar = progress_bar(progress, len(candidates) * len(track_seeds))
        results: list = [None] * len(chunks)
        lock = threading.Lock()
        queue = list(range(len(chunks)))
        failure: list[BaseException] = []
        own_work_done = threading.Event()  # until then, idle workers still need rank 0's heartbeat

        def take():
            with lock:
                return queue.pop(0) if queue and not failure else None

        def done(index: int, chunk_results) -> None:
            with lock:
                results[index] = chunk_results
                bar.update(len(chunk_results))

        dispatcher = threading.Thread(target=self._dispatch,
                                      args=(chunks, training, take, done, failure, own_work_done), daemon=True)
        dispatcher.start()
        try:
            while (index := take()) is not None:
                done(index, self.runner.run(chunks[index], training))
        except BaseException as exc:
            failure.append(RankFailure(f"rank 0: {exc}"))
        own_work_done.set()
        dispatcher.join()
        bar.close()
        if failure:
            raise failure[0]
        flat = [r for chunk_results in results for r in chunk_results]
        return returns_matrix(flat, len(candidates), len(track_seeds)), flat

    def _dispatch(self, chunks, training, take, done, failure, own_work_done) -> None:
        try:
            self._serve_chunks(chunks, training, take, done, failure, own_work_done)
        except Exception as exc:  # an MPI error: with srun, a dead rank's peers see one
            failure.append(RankFailure(f"rank 0's dispatcher: {type(exc).__name__}: {exc}"))

    def _serve_chunks(self, chunks, training, take, done, failure, own_work_done) -> None:
        """Serve chunks to ranks 1..N-1 until none is left, collect what is in flight, and watch
        for silent ranks; idle ranks get rank 0's heartbeat, until rank 0's own last chunk is done
        too, so that they keep waiting."""
        from mpi4py import MPI

        in_flight: dict[int, int] = {}  # rank -> chunk index
        heard = {rank: time.monotonic() for rank in range(1, self.ranks)}
        beat_every, last_beat = heartbeat_interval(self.timeout), time.monotonic()

        def give(rank: int) -> None:
            if (index := take()) is not None:
                self._send((index, chunks[index], training), rank, TAG_WORK)
                in_flight[rank] = index
                heard[rank] = time.monotonic()

        for rank in range(1, self.ranks):
            give(rank)
        status = MPI.Status()
        while (in_flight or not own_work_done.is_set()) and not failure:
            now = time.monotonic()
            if now - last_beat > beat_every:
                for rank in range(1, self.ranks):
                    if rank not in in_flight:
                        self._send(None, rank, TAG_HEARTBEAT)
                last_beat = now
            if not self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                for rank, index in in_flight.items():
                    if now - heard[rank] > self.timeout:
                        failure.append(RankFailure(
                            f"rank {rank} has been silent for {self.timeout:.0f} s ({self.knob}) "
                            f"while running chunk {index}: it died or hangs{self.where(rank)}"))
                        return
                time.sleep(POLL_SECONDS)
                continue
            rank, tag = status.Get_source(), status.Get_tag()
            message = self.comm.recv(source=rank, tag=tag)
            heard[rank] = time.monotonic()
            if tag == TAG_HELLO:
                self.places[rank] = message
            if tag in (TAG_HEARTBEAT, TAG_HELLO):
                continue
            if tag == TAG_ERROR:
                failure.append(RankFailure(f"rank {rank}: {message}{self.where(rank)}"))
                return
            index, chunk_results, busy = message
            done(index, chunk_results)
            self.worker_busy[rank] = busy
            del in_flight[rank]
            give(rank)

    def busy_seconds(self) -> list[float]:
        return [self.runner.busy_seconds, *self.worker_busy[1:]]

    def close(self) -> None:
        """Tell every worker to stop and wait for each to confirm, so that a rank that froze after
        its last chunk ends the job (named) instead of keeping the launcher waiting forever."""
        from mpi4py import MPI

        for rank in range(1, self.ranks):
            self._send(None, rank, TAG_STOP)
        waiting, status = set(range(1, self.ranks)), MPI.Status()
        deadline = time.monotonic() + self.timeout
        while waiting and time.monotonic() < deadline:
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                rank, tag = status.Get_source(), status.Get_tag()
                message = self.comm.recv(source=rank, tag=tag)
                if tag == TAG_HELLO:
                    self.places[rank] = message
                if tag == TAG_STOP:
                    waiting.discard(rank)
            else:
                time.sleep(POLL_SECONDS)
        if waiting:
            raise RankFailure(f"rank(s) {sorted(waiting)} did not confirm the end of the job within "
                              f"{self.timeout:.0f} s ({self.knob}): they died or hang"
                              + "".join(self.where(rank) for rank in sorted(waiting)))


def serve(comm, runner: ChunkRunner, worker_timeout: float, knob: str = "worker_timeout") -> None:
    """A worker rank's whole life: run the chunks rank 0 sends until it says stop."""
    from mpi4py import MPI

    rank = comm.Get_rank()
    status = MPI.Status()
    # Where this rank runs, for rank 0's failure messages (small: sent at once, completed by the stop)
    hello = comm.isend((os.getpid(), socket.gethostname()), dest=0, tag=TAG_HELLO)
    heard = time.monotonic()
    while True:
        if not comm.Iprobe(source=0, tag=MPI.ANY_TAG, status=status):
            if time.monotonic() - heard > worker_timeout:
                abort(comm, f"rank {rank}: rank 0 has been silent for {worker_timeout:.0f} s "
                      f"({knob}); aborting", 3)
            time.sleep(POLL_SECONDS)
            continue
        tag = status.Get_tag()
        message = comm.recv(source=0, tag=tag)
        heard = time.monotonic()
        if tag == TAG_STOP:
            hello.wait()
            comm.send(None, dest=0, tag=TAG_STOP)  # confirm, so rank 0 knows this rank is alive to the end
            return
        if tag == TAG_HEARTBEAT:
            continue
        index, chunk, training = message
        heartbeat = Heartbeat(comm, 0, heartbeat_interval(worker_timeout))
        try:
            results = runner.run(chunk, training)
        except Exception as exc:
            reply, reply_tag = f"{exc}", TAG_ERROR
        else:
            reply, reply_tag = (index, results, runner.busy_seconds), TAG_RESULT
        finally:
            heartbeat.stop()
        # Rank 0 owed this rank nothing while it ran the chunk, however long that took: the
        # clock on rank 0's silence restarts now.
        heard = time.monotonic()
        request = comm.isend(reply, dest=0, tag=reply_tag)
        while not request.Test():
            if time.monotonic() - heard > worker_timeout:
                abort(comm, f"rank {rank}: rank 0 did not take a result for {worker_timeout:.0f} s "
                      f"({knob}); aborting", 3)
            time.sleep(POLL_SECONDS)
        heard = time.monotonic()  # the send completed: rank 0 is alive; its next message may take a while
        if reply_tag == TAG_ERROR:
            return


def run_farm(runner: ChunkRunner, worker_timeout: float, body, knob: str = "worker_timeout"):
    """Call body(farm) on rank 0, or in the only process; other ranks serve chunks until
    rank 0 is done. Under MPI, a failure on rank 0 aborts every rank with the message printed.
    `knob` names the config key worker_timeout came from, for the messages that quote it."""
    comm = mpi_world()
    if comm is None:
        return body(LocalFarm(runner))
    # The launcher reports a dead process by its PID: this line maps PIDs to ranks in the job's log.
    print(f"rank {comm.Get_rank()} of {comm.Get_size()}: pid {os.getpid()} on {socket.gethostname()}", flush=True)
    if comm.Get_rank() != 0:
        serve(comm, runner, worker_timeout, knob)
        return None
    farm = MPIFarm(comm, runner, worker_timeout, knob)
    try:
        result = body(farm)
        farm.close()
    except BaseException as exc:
        abort(comm, f"failed on rank 0: {type(exc).__name__}: {exc}", 1)
    return result
