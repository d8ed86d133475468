"""The README's snippets run as written."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _snippets(language):
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_readme_python_snippet_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    snippets = _snippets("python")
    assert len(snippets) == 2
    namespace = {}
    for snippet in snippets:  # the second snippet continues the first
        exec(compile(snippet, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert re.search(r"ticket keeps \d+\.\d% of the weights", out)
    assert re.search(r"\d+\.\d% kept, \d+ of \d+ bytes", out)
    assert (tmp_path / "ticket.npz").exists()
    assert (tmp_path / "my_ticket" / "ticket.keras").exists()


def test_readme_commands_match_ci():
    commands = _snippets("bash")[0]
    assert "python3 -m apps.search --flagfile=apps/flags/quickstart.cfg" in commands
    test_command = [line for line in commands.splitlines() if line and not line.startswith("#")][-1]
    with open(os.path.join(ROOT, ".ci", "run")) as handle:
        ci_lines = [line.strip() for line in handle if line.strip()]
    assert ci_lines[-1] == test_command
    assert os.path.exists(os.path.join(ROOT, "apps", "flags", "quickstart.cfg"))


def test_guide_documents_every_flag():
    from keras_lottery.search.config import SearchConfig

    with open(os.path.join(ROOT, "docs", "guide.md")) as handle:
        guide = handle.read()
    missing = [name for name in SearchConfig.field_names() if f"`--{name}`" not in guide]
    assert not missing, f"docs/guide.md does not document {missing}"
