"""File analysis on a Dask cluster: ``ser analyze --cluster``.

Needs the optional ``cluster`` extra (``pip install 'ser[cluster]'``: Dask's
``distributed``); importing this module without it raises ``ImportError``.

The job is a map of :func:`ser_engine.files.analysis.analyze_file` (a pure function of
file, model and settings) over the files, run by an existing distributed engine:

* **Where.** :meth:`ClusterAddress.parse` takes a scheduler's address
  (``tcp://host:8786``) or ``local:N``; :func:`connect` reaches the scheduler
  within :data:`CONNECT_TIMEOUT_S` (else a :class:`~ser_engine.errors.ClusterError`
  saying so) or starts a :func:`local_cluster` of N worker processes that
  listen on the loopback interface only, without a dashboard.
* **The model** travels as its files' bytes with its fingerprint
  (:class:`ModelPlugin`, a Dask worker plugin): each worker writes them into its
  own scratch folder, loads the model once, and refuses it
  (:class:`~ser_engine.errors.ModelError`) unless the files it wrote give the
  same :attr:`~ser_engine.inference.model.EmotionModel.fingerprint` and it runs the same
  version of ``ser``; each task checks the fingerprint again. No folder needs to
  be shared for the model; a voice profile travels with it. Workers that join
  later (or are restarted after a crash) get the plugin from the scheduler.
* **The files** are read by the workers, from the path given to the client
  made absolute: every machine must see the files under the same path (a shared
  file system). Results are reported under the path as given, so they are the
  bytes a local run writes.
* **Order.** :func:`analyze_on_cluster` keeps a bounded number of files in
  flight (a few per worker thread) and yields the results in input order as the
  front of the queue completes, so memory stays bounded for any archive.
* **Failures.** A bad file is a failed result, as locally. A worker that dies
  loses nothing: the scheduler runs its files again elsewhere (a file that kills
  its worker every time becomes a failed result, never a hole). Setting
  ``cancel`` (Ctrl-C) cancels the files not yet done; a file being analysed on a
  worker stops at its next window (:class:`ModelPlugin` sees the cancellation).

Dask sends tasks and results between the machines with pickle: connect only
to a scheduler you trust (anyone who can submit to it can run code on its
workers), and use its TLS support across untrusted networks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client, Future, LocalCluster, WorkerPlugin, get_worker
from distributed.scheduler import KilledWorker
from distributed.worker import Worker

from ser_engine.errors import ClusterError, ModelError, ParameterError
from ser_engine.files.analysis import MAX_WORKERS, FileResult, analyze_file
from ser_engine.files.paths import display_path
from ser_engine.inference.model import EmotionModel
from ser_engine.logs import get_logger

__all__ = [
    "CONNECT_TIMEOUT_S",
    "ClusterAddress",
    "ModelPlugin",
    "analyze_on_cluster",
    "connect",
    "local_cluster",
]

logger = get_logger(__name__)

CONNECT_TIMEOUT_S = 3.0
"""How long :func:`connect` tries to reach a scheduler before it gives up."""
FILES_PER_THREAD = 4
"""Files in flight per worker thread: enough to keep every worker busy while the
client gathers results, few enough that results waiting behind a long file stay small."""
MIN_IN_FLIGHT = 16
"""Files in flight at least (a cluster whose workers are still starting has no threads yet)."""
_POLL_S = 0.1
"""How often the client looks at ``cancel`` while the first file in the queue is still running."""
_CANCELLED_STATES = frozenset({"released", "cancelled", "forgotten"})
"""Worker task states after ``executing`` that mean the client no longer wants the result."""


@dataclass(frozen=True)
class ClusterAddress:
    """Where ``ser analyze --cluster`` runs: a scheduler's address, or a local cluster.

    Attributes
    ----------
    scheduler : str or None
        A Dask scheduler's address (``tcp://host:8786``, ``tls://...``, ``host:port``);
        None for a local cluster.
    local_workers : int
        Worker processes of the local cluster (0 with a scheduler).
    """

    scheduler: str | None = None
    local_workers: int = 0

    @classmethod
    def parse(cls, text: str) -> ClusterAddress:
        """Parse ``--cluster``'s value: ``local:N`` or a scheduler's address.

        Parameters
        ----------
        text : str

        Returns
        -------
        ClusterAddress

        Raises
        ------
        ParameterError
            Empty text, or ``local:`` without a worker count from 1 to
            :data:`~ser_engine.files.analysis.MAX_WORKERS`.
        """
        text = text.strip()
        if not text:
            raise ParameterError("expected a scheduler address (tcp://host:8786) or local:N")
        if text == "local" or text.startswith("local:"):
            m = re.fullmatch(r"local:(\d+)", text)
            n = int(m.group(1)) if m else 0
            if not 1 <= n <= MAX_WORKERS:
                raise ParameterError(f"local:N needs N from 1 to {MAX_WORKERS} worker processes, got {text!r}")
            return cls(local_workers=n)
        return cls(scheduler=text)

    def __str__(self) -> str:
        return self.scheduler if self.scheduler is not None else f"local:{self.local_workers}"


def local_cluster(*, workers: int, local_directory: str | os.PathLike[str]) -> LocalCluster:
    """Start a cluster of worker processes on this machine, reachable from it alone.

    The scheduler, the nannies and the workers listen on 127.0.0.1 only. There is no
    dashboard: Dask's scheduler and workers always open an HTTP port, so theirs are
    a random loopback port each with no route at all (no dashboard, metrics, JSON
    state or proxy; ``dashboard_address=None`` alone would still serve those on
    port 8787). Each worker is one process with one thread (as one ``--workers``
    thread locally); their scratch space is ``local_directory``.

    Parameters
    ----------
    workers : int
        Worker processes.
    local_directory : path-like
        The workers' scratch folder (the caller removes it).

    Returns
    -------
    distributed.LocalCluster
        Running; close it (it is a context manager).
    """
    import logging

    import dask

    # the nannies hand this configuration to the workers they start (and restart)
    with dask.config.set({"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tcp",
            scheduler_port=0,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            local_directory=os.fspath(local_directory),
            silence_logs=logging.ERROR,
        )


@contextlib.contextmanager
def connect(address: ClusterAddress, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Client]:
    """Connect to ``address`` (starting a local cluster for ``local:N``); close everything on exit.

    Parameters
    ----------
    address : ClusterAddress
    timeout_s : float
        How long to try to reach the scheduler.

    Yields
    ------
    distributed.Client
        Not made Dask's default client (nothing global changes).

    Raises
    ------
    ClusterError
        The scheduler cannot be reached within ``timeout_s``, or the address is not one
        (the message names it and the reason).
    """
    with contextlib.ExitStack() as stack:
        if address.scheduler is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="ser-cluster-"))
            cluster = stack.enter_context(local_cluster(workers=address.local_workers, local_directory=scratch))
            target: str | LocalCluster = cluster
        else:
            target = address.scheduler
        try:
            client = Client(target, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s ({reason}); "
                               "is `dask scheduler` running there, and can this machine reach its port?") from exc
        except (ValueError, TypeError) as exc:  # distributed's parse of an address that is not one
            raise ClusterError(f"{address}: not a Dask scheduler address ({exc})") from exc
        stack.enter_context(client)
        logger.debug("connected to the Dask scheduler of %s", address)
        yield client


class ModelPlugin(WorkerPlugin):
    """The model (and voice profile) of one ``ser analyze`` run, loaded once on each worker.

    Carries the model set's files as bytes (:attr:`~ser_engine.inference.model.EmotionModel.files`),
    their fingerprint and the ``ser`` version of the client. :meth:`setup` writes the
    files into a folder of the worker's scratch space, loads them, and refuses them
    (:class:`~ser_engine.errors.ModelError`, which :meth:`distributed.Client.register_plugin`
    raises on the client) when the loaded model's fingerprint differs or the worker runs
    another version of ``ser``. While a task runs, :meth:`watch` gives it a
    ``threading.Event`` set when the client cancels the task (Dask's
    ``executing -> released`` transition): the file stops at its next window.

    Parameters
    ----------
    model : EmotionModel
        The client's model (with its voice profile, if any).
    """

    def __init__(self, model: EmotionModel) -> None:
        from ser_engine import version

        self.files = {path.name: path.read_bytes() for path in model.files}
        self.fingerprint = model.fingerprint
        self.profile = model.profile
        self.version = version()
        self.run = uuid.uuid4().hex[:8]
        self.__setstate__(self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:
        # what travels to the workers: the files, their fingerprint, the profile, the version, the run
        return {"files": self.files, "fingerprint": self.fingerprint, "profile": self.profile,
                "version": self.version, "run": self.run}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.model: EmotionModel | None = None
        self._folder: str | None = None
        self._limits: Any = None
        self._watched: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Name of the plugin on the workers: the model's fingerprint and the run's random id."""
        return f"ser-model-{self.fingerprint[:12]}-{self.run}"

    def setup(self, worker: Worker) -> None:
        """Write the model's files into the worker's scratch space and load them once (runs on the worker).

        Raises
        ------
        ModelError
            The worker runs another version of ``ser``, or the model it loaded has
            another fingerprint than the client's.
        """
        from threadpoolctl import threadpool_limits

        from ser_engine import version
        from ser_engine.privacy import disable_telemetry

        disable_telemetry()  # before onnxruntime is imported in this worker process
        where = worker.address
        if version() != self.version:
            raise ModelError(f"worker {where} runs ser {version()}, the client ser {self.version}: "
                             "install the same version of ser on every machine")
        self._folder = tempfile.mkdtemp(prefix="ser-model-", dir=worker.local_directory)
        for name, data in self.files.items():
            with open(os.path.join(self._folder, name), "wb") as fh:
                fh.write(data)
        model = EmotionModel.load(self._folder)
        if model.fingerprint != self.fingerprint:
            raise ModelError(f"worker {where}: the model it loaded has fingerprint {model.fingerprint[:16]}…, "
                             f"the client's {self.fingerprint[:16]}…; refused")
        self.model = model.with_profile(self.profile)
        # one thread per task for NumPy's BLAS and OpenMP, as in a local run: a busy worker
        # thread each, and the sums done in the same order as there
        self._limits = threadpool_limits(limits=1)
        logger.debug("worker %s: model %s loaded (%s)", where, model.name, self.fingerprint[:12])

    def teardown(self, worker: Worker) -> None:
        """Stop the tasks still running, undo the thread limits and remove the model's folder."""
        del worker  # the plugin's signature
        with self._lock:
            for event in self._watched.values():
                event.set()
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
        self.model = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        """Set the cancel event of a running task that the client no longer wants (called by the worker)."""
        del args, kwargs  # the plugin's signature
        if start == "executing" and finish in _CANCELLED_STATES:
            with self._lock:
                event = self._watched.get(str(key))
            if event is not None:
                event.set()

    @contextlib.contextmanager
    def watch(self, key: str) -> Iterator[threading.Event]:
        """Return the event set when the task ``key`` is cancelled, while the ``with`` block runs."""
        event = threading.Event()
        with self._lock:
            self._watched[key] = event
        try:
            yield event
        finally:
            with self._lock:
                self._watched.pop(key, None)


def _analyze_task(
    path: Path,
    given: Path,
    *,
    plugin: str,
    fingerprint: str,
    task: str,
    window_s: float | None,
    hop_s: float | None,
    gate_sensitivity: float,
) -> FileResult:
    """Analyse one file on a worker with the model its :class:`ModelPlugin` loaded (a Dask task).

    ``path`` is what the worker opens (absolute); the result names ``given``, the path
    as the user gave it, as a local run does. ``task`` is the task's Dask key (what
    :meth:`ModelPlugin.watch` is told about when the client cancels it).
    """
    worker = get_worker()
    loaded = worker.plugins.get(plugin)
    if not isinstance(loaded, ModelPlugin) or loaded.model is None:
        raise ModelError(f"worker {worker.address}: the model of this run is not loaded (see the worker's log)")
    if loaded.model.fingerprint != fingerprint:
        raise ModelError(f"worker {worker.address}: its model has another fingerprint than the client's; refused")
    with loaded.watch(task) as cancel:
        result = analyze_file(path, loaded.model, window_s=window_s, hop_s=hop_s,
                              gate_sensitivity=gate_sensitivity, cancel=cancel)
    return _as_given(result, given=given)


def _as_given(result: FileResult, *, given: Path) -> FileResult:
    """Return ``result`` as the analysis of ``given`` (the same file under the path the user gave)."""
    if result.path == given:
        return result
    opened, shown = display_path(result.path), display_path(given)

    def name(text: str | None) -> str | None:
        return None if text is None else text.replace(opened, shown)

    return dataclasses.replace(result, path=given, error=name(result.error), warning=name(result.warning))


def _worker_path(path: Path) -> Path:
    """Return the path a worker opens: ``path`` made absolute (workers run in other folders, on other machines)."""
    return path if path.is_absolute() else Path.cwd() / path


def _killed_result(path: Path, exc: KilledWorker) -> FileResult:
    name = display_path(path)
    return FileResult(path=path, ok=False,
                      error=f"{name}: the worker analysing it died {exc.allowed_failures + 1} times "
                            "(the file may crash the decoder); left out")


def analyze_on_cluster(
    files: Sequence[Path],
    model: EmotionModel,
    *,
    client: Client,
    window_s: float | None = None,
    hop_s: float | None = None,
    gate_sensitivity: float = 0.5,
    cancel: threading.Event | None = None,
) -> Iterator[FileResult]:
    """Analyse files on the cluster behind ``client``; yields one result per file, in order.

    The equivalent of :func:`ser_engine.files.analysis.analyze_paths` with ``expand=False``:
    the same :func:`~ser_engine.files.analysis.analyze_file` on each file, run by the
    cluster's workers (see the module's description), the same results.

    Parameters
    ----------
    files : sequence of Path
        Files (folders already expanded, e.g. by :func:`ser_engine.files.paths.find_audio_files`),
        each under a path every worker can open.
    model : EmotionModel
        Sent to the workers (its files and fingerprint, with its voice profile).
    client : distributed.Client
        From :func:`connect`.
    window_s, hop_s, gate_sensitivity : see :func:`~ser_engine.files.analysis.analyze_file`
    cancel : threading.Event, optional
        When set, the files not yet done are cancelled and no more results are yielded.

    Yields
    ------
    FileResult
        One per file, in the order of ``files``.

    Raises
    ------
    ModelError
        A worker refused the model (another fingerprint, another version of ``ser``).
    Exception
        Whatever :func:`~ser_engine.files.analysis.analyze_file` raises on a worker (anything
        but a bad file): the files in flight are cancelled and the batch stops.
    """
    plugin = ModelPlugin(model)
    client.register_plugin(plugin, name=plugin.name)
    try:
        yield from _ordered_results(files, client=client, plugin=plugin, cancel=cancel,
                                    settings={"window_s": window_s, "hop_s": hop_s,
                                              "gate_sensitivity": gate_sensitivity})
    finally:
        with contextlib.suppress(Exception):  # cleanup only: the batch's outcome is already decided
            client.unregister_worker_plugin(plugin.name)


def _in_flight(client: Client) -> int:
    """Files to keep submitted: a few per worker thread of the cluster as it is now."""
    threads = int(sum(client.nthreads().values()))
    if threads == 0:
        logger.warning("the cluster has no workers yet: waiting for some to join the scheduler")
    return max(MIN_IN_FLIGHT, FILES_PER_THREAD * threads)


def _ordered_results(
    files: Iterable[Path],
    *,
    client: Client,
    plugin: ModelPlugin,
    cancel: threading.Event | None,
    settings: dict[str, Any],
) -> Iterator[FileResult]:
    """Submit the files a window at a time and yield their results in input order."""
    run = uuid.uuid4().hex[:8]
    done = threading.Event()  # set by Dask's callback thread when any submitted file completes
    pending: deque[tuple[Path, Future[FileResult]]] = deque()
    todo = iter(enumerate(files))
    limit = _in_flight(client)

    def submit() -> None:
        while len(pending) < limit:
            item = next(todo, None)
            if item is None:
                return
            i, path = item
            key = f"ser-analyze-{run}-{i}"
            future = client.submit(_analyze_task, _worker_path(path), path, key=key, pure=False,
                                   plugin=plugin.name, fingerprint=plugin.fingerprint, task=key, **settings)
            future.add_done_callback(lambda _f: done.set())
            pending.append((path, future))

    def stopped() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        submit()
        since_check = 0
        while pending:
            if stopped():
                return
            if not pending[0][1].done():
                done.clear()
                if not pending[0][1].done():  # completed between the two looks: no wait
                    done.wait(_POLL_S)
                continue
            ready: list[tuple[Path, Future[FileResult]]] = []
            while pending and pending[0][1].done():
                ready.append(pending.popleft())
            for result in _gather(client, ready):
                yield result
                if stopped():
                    return
            since_check += len(ready)
            if since_check >= limit:  # workers may have joined or left since
                limit, since_check = _in_flight(client), 0
            submit()
    finally:
        if pending:  # stopped (Ctrl-C), or a failure: the files not done are not wanted any more
            with contextlib.suppress(Exception):
                client.cancel([f for _, f in pending], reason="ser analyze stopped")


def _gather(client: Client, ready: list[tuple[Path, Future[FileResult]]]) -> list[FileResult]:
    """Fetch the results of completed files in one call.

    A file whose task kept killing its workers is a failed result; any other error of a
    task (a refused model, a bug) is raised here, with its traceback.
    """
    failed: dict[int, FileResult] = {}
    for i, (path, future) in enumerate(ready):
        if future.status == "error":
            exc = future.exception()
            if not isinstance(exc, KilledWorker):
                future.result()  # raises the task's exception
            failed[i] = _killed_result(path, exc)
        elif future.status != "finished":  # cancelled by the scheduler, not by us (it restarted, or was closed)
            raise ClusterError(f"{display_path(path)}: the cluster dropped the file's task ({future.status}); "
                               "the scheduler may have restarted")
    fetched = iter(client.gather([f for i, (_, f) in enumerate(ready) if i not in failed]))
    return [failed[i] if i in failed else next(fetched) for i in range(len(ready))]
