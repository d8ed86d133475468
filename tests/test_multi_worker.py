"""`--distribute=multi_worker` for real: two worker processes on this machine, as the guide says.

Each worker runs `python -m apps.search ... --distribute=multi_worker` with its
own TF_CONFIG (two `localhost` ports). The chief's `results.json` must match a
single-process run of the same flags, the other worker must write nothing but
its resume state, and killing both mid-search and starting them again must
end with the same results.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import free_ports

#: Multi-process runs, kills and resumes: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flags(idx_dir, out):
    return [sys.executable, "-m", "apps.search", "--flagfile=apps/flags/quickstart.cfg",
            f"--data_dir={idx_dir}", "--validation_examples=200", "--rounds=2", "--epochs=2",
            "--batch_size=100", "--ticket_epoch=1", "--ticket_epochs=1", "--mask_penalty=1e-5",
            "--nodense_baseline", "--verbose=0", "--latency_repeats=0", f"--output_dir={out}"]


def _start_workers(idx_dir, out):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            _flags(idx_dir, out) + ["--distribute=multi_worker"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def _finish(processes):
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in outputs]


def _results(out):
    with open(os.path.join(out, "results.json")) as handle:
        results = json.load(handle)
    def rounded(value):
        return None if value is None else round(value, 2)

    return [(r["round"], r["remaining"], r["remaining_per_layer"], rounded(r["search_accuracy"]),
             rounded(r.get("ticket_accuracy"))) for r in results["rounds"]]


def _round_one_done(run_dir):
    try:
        return len(_results(run_dir)) >= 1
    except (OSError, ValueError):
        return False


def _progress(run_dir):
    """What a worker has saved: its round records (with or without a ticket) and the epoch
    of each phase checkpoint."""
    rounds = json.loads((run_dir / "results.json").read_text())["rounds"]
    phases = run_dir / "state" / "phases"
    epochs = {}
    for phase in (sorted(os.listdir(phases)) if phases.is_dir() else []):
        latest = phases / phase / "latest.json"
        epochs[phase] = json.loads(latest.read_text())["epoch"] if latest.exists() else 0
    return [(r["round"], "ticket_accuracy" in r) for r in rounds], epochs


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    from conftest import write_fixture_data

    idx_dir = write_fixture_data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("single") / "run"
    done = subprocess.run(_flags(idx_dir, out) + ["--distribute=none"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return idx_dir, _results(out)


def test_two_workers_find_the_single_process_ticket(single_process, tmp_path):
    idx_dir, expected = single_process
    out = tmp_path / "run"
    chief_output, worker_output = _finish(_start_workers(idx_dir, out))
    assert f"results: {out}" in chief_output
    assert "the chief writes the results" in worker_output and "results:" not in worker_output
    assert _results(out) == expected
    # The other worker keeps only what it needs to resume, out of the chief's way.
    entries = sorted(e for e in os.listdir(out) if not e.startswith("."))
    assert entries == ["results.json", "state", "tensorboard", "ticket", "tickets",
                       "worker_state"], entries
    assert os.listdir(out / "worker_state") == ["worker_1"]
    assert not {"tensorboard", "ticket"} & set(os.listdir(out / "worker_state" / "worker_1"))


def test_killed_workers_resume_to_the_same_ticket(single_process, tmp_path):
    idx_dir, expected = single_process
    out = tmp_path / "run"
    processes = _start_workers(idx_dir, out)
    worker_dir = out / "worker_state" / "worker_1"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill both once round 1 is on disk, inside round 2
        assert all(p.poll() is None for p in processes), "a worker ended early"
        if _round_one_done(out) and _round_one_done(worker_dir):
            # Freeze both, and kill them only at a moment both have saved the same progress:
            # workers stopped an epoch apart do not resume yet (see the closing note of
            # session 4); that is a known limit, not what this test checks.
            for process in processes:
                process.send_signal(signal.SIGSTOP)
            if _progress(out) == _progress(worker_dir):
                break
            for process in processes:
                process.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    else:
        pytest.fail("round 1 never finished")
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert len(_results(out)) == 1
    _finish(_start_workers(idx_dir, out))
    assert _results(out) == expected
