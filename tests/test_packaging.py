"""`pip install .` gives one console command per app, the apps inside the package namespace."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import tomllib

#: Multi-process runs, kills and resumes: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "keras_lottery", "apps"))
              if name.endswith(".py") and name != "__init__.py")


def test_every_app_has_a_console_command_a_short_name_and_a_bazel_binary():
    assert APPS == ["report", "search", "sweep"]
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    assert project["project"]["scripts"] == {
        f"keras-lottery-{app}": f"keras_lottery.apps.{app}:run_main" for app in APPS}
    assert "apps" not in project["tool"]["setuptools"]["packages"]
    build = open(os.path.join(ROOT, "BUILD")).read()
    listed = re.search(r'for app in \(([^)]*)\)', build).group(1)
    assert sorted(re.findall(r'"(\w+)"', listed)) == APPS
    for app in APPS:
        assert os.path.exists(os.path.join(ROOT, "apps", f"{app}.py"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv (seeing this machine's TensorFlow) with `pip install .` of the repository."""
    directory = tmp_path_factory.mktemp("venv")
    # Built from a copy: setuptools writes build/ beside the sources, and two test workers
    # building in one checkout would race.
    source = tmp_path_factory.mktemp("source") / "keras_lottery"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", "docs"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(directory)],
                   check=True, timeout=300)
    installed = subprocess.run(
        [str(directory / "bin" / "pip"), "install", "--no-deps", "--no-build-isolation",
         "--no-warn-script-location", str(source)], capture_output=True, text=True,
        timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return directory


@pytest.mark.parametrize("app", APPS)
def test_the_installed_console_command_runs(venv, app, tmp_path):
    done = subprocess.run([str(venv / "bin" / f"keras-lottery-{app}"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"keras-lottery-{app}" in done.stdout or app in done.stdout.lower()
    doc_line = __import__(f"keras_lottery.apps.{app}", fromlist=["x"]).__doc__.splitlines()[0]
    assert doc_line in done.stdout  # the app's own help, not the wrapper's


def test_nothing_is_installed_as_a_top_level_apps_package(venv, tmp_path):
    done = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import importlib.util as u, keras_lottery.apps.search as s; "
                           "print(u.find_spec('apps'), s.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found, path = done.stdout.split()[-2:]
    assert found == "None" and str(venv) in path
