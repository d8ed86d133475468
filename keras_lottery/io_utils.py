"""Atomic file writes: a crash or a full disk never leaves a half-written result."""

import contextlib
import json
import os
import shutil
import tempfile
import zipfile

import numpy as np


def atomic_write(path, write_fn, suffix=""):
    """Calls `write_fn(tmp_path)`, then renames the temporary file onto `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
    try:
        write_fn(tmp_path)
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def write_json(path, data):
    """Writes `data` as indented JSON to `path`, atomically."""

    def write(tmp_path):
        with open(tmp_path, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, allow_nan=False)
            handle.write("\n")

    atomic_write(path, write, suffix=".json")


def copy_files(source_dir, target_dir):
    """Copies every file of `source_dir` into `target_dir`, each atomically."""
    for name in sorted(os.listdir(source_dir)):
        source = os.path.join(source_dir, name)
        if os.path.isfile(source):
            atomic_write(os.path.join(target_dir, name),
                         lambda tmp, source=source: shutil.copyfile(source, tmp),
                         suffix=os.path.splitext(name)[1])


def remove_path(path):
    """Removes a file or a directory tree; a path that does not exist is fine."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


class DamagedFileError(ValueError):
    """A finished file that cannot be read back (cut short or overwritten on disk)."""


@contextlib.contextmanager
def open_npz(path, what):
    """`np.load(path)` without pickle; a file that is not a whole `.npz` is a one-line
    `DamagedFileError` naming it and `what` it held (a missing file stays FileNotFoundError)."""
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError)
    try:
        with np.load(path, allow_pickle=False) as data:
            yield data
    except FileNotFoundError:
        raise
    except unreadable as error:
        raise DamagedFileError(
            f"{path} ({what}) is damaged and cannot be read ({error}); nothing was deleted: "
            "restore the file, or start the run again with --overwrite.") from None
