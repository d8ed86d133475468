"""keras-tuner's distributed mode: a chief oracle and two workers on 127.0.0.1 run one sweep.

Started exactly as docs/guide.md tells users: the same `apps.sweep` command in
every process, with `KERASTUNER_TUNER_ID` (`chief`, `tuner0`, `tuner1`),
`KERASTUNER_ORACLE_IP=127.0.0.1` and `KERASTUNER_ORACLE_PORT`.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import free_ports

#: Multi-process runs, kills and resumes: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_chief_and_two_workers_run_each_trial_once(idx_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "apps.sweep", "--flagfile=apps/flags/quickstart.cfg",
               f"--data_dir={idx_dir}", "--validation_examples=200", "--rounds=1", "--epochs=1",
               "--batch_size=100", "--ticket_epoch=0", "--ticket_epochs=1",
               "--nodense_baseline", "--verbose=0", "--max_trials=4", f"--sweep_dir={sweep_dir}",
               # s0 >= 0: one epoch on this small set from s0 < 0 may keep no weight (a failed
               # trial); a space given on the command line reaches every worker alike.
               "--sweep=mask_init=0:0.05,mask_penalty"]
    port = str(free_ports(1)[0])
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERASTUNER_TUNER_ID=tuner_id,
                   KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
        processes[tuner_id] = subprocess.Popen(command, cwd=ROOT, env=env, text=True,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outputs = {}
    for tuner_id, process in processes.items():
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, (tuner_id, stderr[-3000:])
        outputs[tuner_id] = stdout
    ran = {tuner_id: re.findall(r"^trial (\S+) on " + tuner_id, outputs[tuner_id], re.M)
           for tuner_id in ("tuner0", "tuner1")}
    every = ran["tuner0"] + ran["tuner1"]
    assert len(every) == 4 and len(set(every)) == 4, ran  # each trial ran once, somewhere
    assert ran["tuner0"] and ran["tuner1"], ran  # both workers took trials
    assert "trial " not in outputs["chief"]  # the chief only serves the oracle
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert sorted(t["trial"] for t in summary["trials"]) == sorted(every)
    assert all(t["status"] == "COMPLETED" for t in summary["trials"])
    for trial in every:
        assert (sweep_dir / f"trial_{trial}" / "run" / "results.json").exists()
    for tuner_id in ("tuner0", "tuner1"):
        assert "the chief writes the sweep's summary" in outputs[tuner_id]
