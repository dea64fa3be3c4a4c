"""``ser analyze --cluster``: file analysis on a real Dask cluster of worker processes on the loopback interface.

One :func:`ser_engine.files.cluster.local_cluster` (the configuration ``--cluster local:N`` uses)
serves the module; ``ser analyze --cluster tcp://...`` reaches it as it would a scheduler on
another machine. The subprocess tests start their own ``--cluster local:2``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import ROOT
from distributed import Client, LocalCluster
from waiting import GUARD_S, ProcessOutput, wait_until

from ser_engine.cli.main import main
from ser_engine.errors import ModelError, ParameterError
from ser_engine.files.analysis import analyze_paths
from ser_engine.files.cluster import ClusterAddress, ModelPlugin, _analyze_task, analyze_on_cluster, local_cluster
from ser_engine.files.export import ResultWriter
from ser_engine.files.paths import find_audio_files
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import profile_from_files

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("SER_MODEL_DIR", None)
    return e


def ser_command(*args: str | Path) -> list[str]:
    """Return the command line of the installed ``ser`` program with ``args``."""
    return [str(Path(sys.executable).parent / "ser"), *map(str, args)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(workers=2, local_directory=tmp_path_factory.mktemp("dask")) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def batch(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Return a folder to run in and the paths to give, relative to it: 12 clips, a missing file, a text .wav.

    The clips are reached through a symbolic link in the folder, so the workers (which run
    elsewhere) must open them under their absolute paths, and the results must still name
    them as given.
    """
    here = tmp_path_factory.mktemp("batch")
    (here / "ravdess").symlink_to(corpus_dir / "ravdess")
    (here / "notes.wav").write_text("not audio, just a note\n")
    clips = sorted((here / "ravdess" / "Actor_03").glob("*.flac"))[:12]
    assert len(clips) == 12
    given = [str(c.relative_to(here)) for c in clips[:5]] + ["missing.wav", "notes.wav"]
    given += [str(c.relative_to(here)) for c in clips[5:]]
    return here, given


@pytest.fixture(scope="module")
def profile(corpus_dir: Path, shipped_model: EmotionModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a voice profile made from 11 real neutral clips of one CREMA-D speaker."""
    clips = sorted((corpus_dir / "crema-d").glob("1002_*_NEU_*.ogg"))[:11]
    path = tmp_path_factory.mktemp("profile") / "speaker.json"
    profile_from_files(clips, model=shipped_model, name="Speaker 1002").save(path)
    return path


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def written(results: list, model: EmotionModel) -> str:
    out = io.StringIO()
    writer = ResultWriter(out, fmt="json", labels=model.labels, segments=True, affect=model.affect_names)
    writer.begin()
    for r in results:
        writer.write(r)
    writer.end()
    return out.getvalue()


def test_cluster_address_is_a_scheduler_or_local_workers() -> None:
    assert ClusterAddress.parse("tcp://10.0.0.5:8786") == ClusterAddress(scheduler="tcp://10.0.0.5:8786")
    assert ClusterAddress.parse("local:3") == ClusterAddress(local_workers=3)
    assert str(ClusterAddress.parse("local:3")) == "local:3"
    for bad in ("", "local", "local:0", "local:x", "local:100000"):
        with pytest.raises(ParameterError):
            ClusterAddress.parse(bad)


def test_local_cluster_listens_on_loopback_only_without_dashboard(client: Client) -> None:
    pids = {os.getpid(), *client.run(os.getpid).values()}  # the scheduler and nannies run here
    assert len(pids) == 3
    listening = [c.laddr for pid in pids for c in psutil.Process(pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening, "found no listening socket: the check would pass vacuously"
    assert all(addr.ip == "127.0.0.1" for addr in listening), listening
    # Dask always opens an HTTP port per scheduler and worker: theirs serve nothing at all
    info = client.scheduler_info()
    http_ports = [info["services"]["dashboard"], *(w["services"]["dashboard"] for w in info["workers"].values())]
    assert len(http_ports) == 3
    for port in http_ports:
        for route in ("/status", "/health", "/metrics", "/json/identity.json", "/info/main/workers.html"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=GUARD_S)
            assert answer.value.code == 404, (port, route)


@pytest.mark.parametrize("options", [["--format", "json", "--profile", "PROFILE"], ["--format", "csv", "--segments"]],
                         ids=["json-profile", "csv-segments"])
def test_cluster_output_is_byte_identical_to_a_local_run(
    options: list[str], cluster: LocalCluster, batch: tuple[Path, list[str]], profile: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    here, given = batch
    monkeypatch.chdir(here)
    options = [str(profile) if o == "PROFILE" else o for o in options]
    local = run_main(["analyze", *options, "--workers", "2", *given], capsys)
    remote = run_main(["analyze", *options, "--cluster", cluster.scheduler_address, *given], capsys)
    assert local[0] == remote[0] == 1  # two files failed
    assert remote[1] == local[1]
    assert remote[2] == local[2]  # the same messages, naming the files as given
    assert "missing.wav: file not found" in remote[2]
    assert "notes.wav: not an audio file" in remote[2]
    assert str(here) not in remote[1] + remote[2]  # no worker-side absolute path leaks into the output
    if "json" in options:
        data = json.loads(remote[1])
        # paths that are not files come first (as in a local run), then every file in the order given
        assert [d["path"] for d in data] == ["missing.wav", *(g for g in given if g != "missing.wav")]
        assert sum(d["ok"] for d in data) == 12


def test_worker_killed_mid_batch_loses_no_result(client: Client, corpus_dir: Path, shipped_model: EmotionModel) -> None:
    files = sorted((corpus_dir / "ravdess" / "Actor_04").glob("*.flac"))[:36]
    expected = written(list(analyze_paths(files, shipped_model, workers=2, expand=False)), shipped_model)
    before = set(client.run(os.getpid).values())
    results = []
    killed: list[int] = []
    for result in analyze_on_cluster(files, shipped_model, client=client):
        results.append(result)
        if not killed:  # the first result is in: kill a worker, one with files in hand if any is
            # (a worker whose files are all done still holds results the client has not gathered)
            busy = [w for w, keys in client.processing().items() if keys]
            target = busy[0] if busy else next(iter(client.scheduler_info()["workers"]))
            pid = client.run(os.getpid, workers=[target])[target]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    assert len(results) == len(files)
    assert written(results, shipped_model) == expected  # every file once, in order, the same bytes
    assert killed[0] in before
    client.wait_for_workers(2, timeout=GUARD_S)  # the nanny started a new worker in its place
    assert killed[0] not in set(client.run(os.getpid).values())


def test_stopping_cancels_the_rest_and_keeps_the_order(client: Client, corpus_dir: Path,
                                                        shipped_model: EmotionModel) -> None:
    files = sorted((corpus_dir / "ravdess" / "Actor_05").glob("*.flac"))
    cancel = threading.Event()
    results = []
    for result in analyze_on_cluster(files, shipped_model, client=client, cancel=cancel):
        results.append(result)
        cancel.set()
    assert [r.path for r in results] == files[: len(results)]
    assert len(results) < len(files)
    # the files not done are cancelled: the cluster goes idle instead of finishing the batch
    wait_until(lambda: not any(client.processing().values()), what="the cluster to drop the cancelled files")


def test_a_worker_with_another_model_is_refused(client: Client, corpus_dir: Path,
                                                shipped_model: EmotionModel) -> None:
    plugin = ModelPlugin(shipped_model)
    plugin.fingerprint = "0" * 64  # what a worker would hold had it loaded other files
    with pytest.raises(ModelError, match="fingerprint"):
        client.register_plugin(plugin, name=plugin.name)
    client.unregister_worker_plugin(plugin.name)
    good = ModelPlugin(shipped_model)
    client.register_plugin(good, name=good.name)
    try:
        clip = sorted((corpus_dir / "ravdess" / "Actor_06").glob("*.flac"))[0]
        future = client.submit(_analyze_task, clip, clip, plugin=good.name, fingerprint="1" * 64, task="t",
                               window_s=None, hop_s=None, gate_sensitivity=0.5, pure=False)
        with pytest.raises(ModelError, match="another fingerprint"):
            future.result()
    finally:
        client.unregister_worker_plugin(good.name)


def _wait_for_cancellation(plugin: str, key: str, folder: str) -> bool:
    """Run on a worker as a file's task would: watch ``key``, leaving a marker when it starts and when it is told."""
    from distributed import get_worker

    with get_worker().plugins[plugin].watch(key) as cancelled:
        Path(folder, "started").touch()
        told = cancelled.wait(GUARD_S)
    Path(folder, "cancelled" if told else "never told").touch()
    return told


def test_a_running_task_hears_that_the_client_cancelled_it(client: Client, shipped_model: EmotionModel,
                                                           tmp_path: Path) -> None:
    plugin = ModelPlugin(shipped_model)
    client.register_plugin(plugin, name=plugin.name)
    try:
        future = client.submit(_wait_for_cancellation, plugin.name, "ser-test-cancel", str(tmp_path),
                               key="ser-test-cancel", pure=False)
        wait_until(lambda: (tmp_path / "started").exists(), what="the task to run on a worker")
        future.cancel()
        # the worker's own transition of the task reaches the plugin, which sets the task's event
        wait_until(lambda: (tmp_path / "cancelled").exists() or (tmp_path / "never told").exists(),
                   what="the task to end", timeout=2 * GUARD_S)
        assert (tmp_path / "cancelled").exists()
    finally:
        client.unregister_worker_plugin(plugin.name)


def test_cancelling_a_running_file_sets_its_event(shipped_model: EmotionModel) -> None:
    plugin = ModelPlugin(shipped_model)
    with plugin.watch("a") as a, plugin.watch("b") as b:
        plugin.transition("a", "ready", "executing")
        plugin.transition("b", "executing", "memory")  # finished: not a cancellation
        assert not a.is_set()
        assert not b.is_set()
        plugin.transition("a", "executing", "released")  # what the worker does when the client cancels
        assert a.is_set()
        assert not b.is_set()


def test_ctrl_c_mid_batch_leaves_valid_json(corpus_dir: Path, tmp_path: Path) -> None:
    folder = corpus_dir / "ravdess"
    expected, _ = find_audio_files([folder])
    proc = subprocess.Popen(ser_command("analyze", "--cluster", "local:2", "--format", "json", "--progress", "never",
                                        folder),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path)
    output = ProcessOutput(proc)
    try:
        output.wait_for_line("stdout", lambda line: '"path"' in line, what="the first result")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = output.finish()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    data = json.loads(stdout)  # the list is closed: valid JSON
    assert 1 <= len(data) < len(expected)
    assert [d["path"] for d in data] == [str(p) for p in expected[: len(data)]]
    assert f"{len(data)} of {len(expected)} results written" in stderr
    assert "Traceback" not in stderr


def test_unreachable_scheduler_fails_fast_with_a_clear_message(corpus_dir: Path, tmp_path: Path) -> None:
    clip = sorted((corpus_dir / "ravdess" / "Actor_01").glob("*.flac"))[0]
    # port 1 on the loopback interface: nothing listens there, the connection is refused
    p = subprocess.run(ser_command("analyze", "--format", "json", "--cluster", "tcp://127.0.0.1:1", clip),
                       capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=GUARD_S)
    assert p.returncode == 1, p.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 3 s" in p.stderr
    assert p.stdout == ""  # nothing half-written
    assert "Traceback" not in p.stderr


def test_without_dask_the_option_says_how_to_install_it(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['distributed'] = None; from ser_engine.cli.main import main; "
            "sys.exit(main(['analyze', '--cluster', 'local:2', 'x.wav']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=tmp_path,
                       timeout=GUARD_S)
    assert p.returncode == 2, p.stderr
    assert "pip install 'ser[cluster]'" in p.stderr
    assert "Traceback" not in p.stderr
