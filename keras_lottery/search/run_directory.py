"""A run directory: the one owner of a search's files.

    results.json               settings and one record per round (the commit point)
    tickets/round_<r>.npz      the ticket masks of round r
    ticket/                    the last round's retrained ticket, exported
    tensorboard/               TensorBoard runs
    state/                     what resuming needs:
        snapshot_epoch_<k>.npz     w_k (rewind point, ticket start), kept
        after_round_<r>.weights.h5 the model after the last finished round, kept
        phases/<phase>/            the running phase's epoch checkpoints (`checkpoints`)
    .lock                      held by the process that runs in the directory

Rules: one process at a time (an exclusive lock held for the run's life);
every file is written atomically; an earlier run with other settings is refused;
nothing of an earlier run is touched until the new run has loaded its data and
built its model, and `--overwrite` then moves the old run aside and deletes it
only once the new run has written its own `results.json`.
"""

import contextlib
import datetime
import fcntl
import json
import os
import platform
import socket
import subprocess
import time

import keras
import tensorflow as tf

from keras_lottery import io_utils
from keras_lottery.search.config import ConfigError, settings_difference
from keras_lottery.version import __version__

RESULTS_FILE = "results.json"
#: Entries of a run directory that belong to a run (moved aside by --overwrite).
RUN_ENTRIES = (RESULTS_FILE, "tickets", "ticket", "state", "tensorboard", "worker_state")


class RunExistsError(ConfigError):
    """The output directory holds a run with other settings, or files of an unknown run."""


class RunLockedError(ConfigError):
    """Another process is running in the output directory."""


class RunDirectory:
    """Paths, results, settings check, lock and overwrite of one search's directory."""

    def __init__(self, path, chief=True):
        self.path = str(path)
        #: Whether this process writes the run's results, tickets and logs (see `distribute`).
        self.chief = chief

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def state(self, *parts):
        return self.file("state", *parts)

    @property
    def results_path(self):
        return self.file(RESULTS_FILE)

    def masks_path(self, round_index):
        return self.file("tickets", f"round_{round_index}.npz")

    def snapshot_path(self, epoch):
        return self.state(f"snapshot_epoch_{epoch}.npz")

    def initial_weights_path(self):
        """`w_0`, kept for `load_run`."""
        return self.state("initial_weights.npz")

    def ticket_dir(self, round_index=None):
        """The exported ticket of round r (`ticket/round_<r>/`), or of the last (`ticket/`)."""
        return self.file("ticket") if round_index is None else self.file(
            "ticket", f"round_{round_index}")

    def round_model_path(self, round_index):
        return self.state(f"after_round_{round_index}.weights.h5")

    def phase_dir(self, phase):
        return self.state("phases", phase)

    def tensorboard(self, *parts):
        return self.file("tensorboard", *parts)

    # Results.
    def read_results(self):
        """The earlier run's results, None when there is none; refuses an unreadable file."""
        if not os.path.exists(self.results_path):
            return None
        try:
            with open(self.results_path) as handle:
                results = json.load(handle)
            results["flags"], results["rounds"]  # noqa: B018 (both must be there)
        except (OSError, ValueError, KeyError, TypeError):
            raise RunExistsError(
                f"--output_dir={self.path!r} holds an unreadable {RESULTS_FILE}; pass "
                "--overwrite to start again or choose another --output_dir.") from None
        return results

    def write_results(self, results):
        io_utils.write_json(self.results_path, results)

    def previous_run(self, flags, may_change=(), overwrite=False):
        """The earlier run to continue (its results), or None for a new run.

        Refuses (RunExistsError) an earlier run with other settings than `flags`
        (except the keys in `may_change`), and run files without a `results.json`,
        unless `overwrite`.
        """
        if overwrite:
            return None
        previous = self.read_results()
        if previous is None:
            # worker_state/ is written by the other workers of a multi-worker run, which may
            # start before this chief has written results.json.
            strays = [name for name in RUN_ENTRIES
                      if name != "worker_state" and os.path.exists(self.file(name))]
            if strays:
                raise RunExistsError(
                    f"--output_dir={self.path!r} holds {', '.join(strays)} but no "
                    f"{RESULTS_FILE}; pass --overwrite to replace them or choose another "
                    "--output_dir.")
            return None
        details = settings_difference(previous["flags"], flags, ignore=may_change)
        if details:
            raise RunExistsError(
                f"--output_dir={self.path!r} holds a run with other settings: {details}; "
                "pass --overwrite to replace it or choose another --output_dir.")
        return previous

    def lock(self):
        """Holds an exclusive lock on the directory for a `with` block (`exclusive_lock`)."""
        return exclusive_lock(self.path)

    # Overwrite.
    def set_aside(self):
        """Moves an earlier run's files into a hidden directory; returns it (None: nothing)."""
        present = [name for name in RUN_ENTRIES if os.path.exists(self.file(name))]
        if not present:
            return None
        aside = self.file(f".replaced-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.makedirs(aside)
        for name in present:
            os.replace(self.file(name), os.path.join(aside, name))
        return aside

    @staticmethod
    def discard(aside):
        if aside:
            io_utils.remove_path(aside)

    def clear_phase(self, phase):
        io_utils.remove_path(self.phase_dir(phase))


@contextlib.contextmanager
def exclusive_lock(directory):
    """Holds an exclusive lock on `directory`; RunLockedError if another process has it. A
    directory the lock created is removed again if nothing but the lock was written in it (a
    run refused before its first file leaves nothing on disk)."""
    created = not os.path.exists(directory)
    os.makedirs(directory, exist_ok=True)
    handle = open(os.path.join(directory, ".lock"), "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise RunLockedError(
                f"--output_dir={directory!r} is in use by {owner}; wait for it to finish "
                "or choose another --output_dir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock
        if created and os.listdir(directory) == [".lock"]:
            os.remove(os.path.join(directory, ".lock"))
            os.rmdir(directory)


#: Version of the layout of results.json (docs/guide.md, "What a run writes").
SCHEMA_VERSION = 2


def environment():
    """What made a run: library, TensorFlow, Keras (and its backend; JAX's version on JAX)
    and Python versions, the library's git commit when it runs from a checkout, the host and
    the time (for `results.json`)."""

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=os.path.dirname(os.path.abspath(io_utils.__file__))).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    backend = {"backend": keras.backend.backend()}
    if backend["backend"] == "jax":
        import jax

        backend["jax"] = jax.__version__
    return {"schema_version": SCHEMA_VERSION, "keras_lottery": __version__,
            "tensorflow": tf.__version__, "keras": keras.__version__, **backend,
            "python": platform.python_version(), "commit": commit, "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
