"""The README's Python example runs as printed (with fewer epochs and trials), so the names,
signatures and call order it shows cannot drift from the code unnoticed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

#: What the example trains, cut to a test's budget. Each must be in the README: if the example
#: changes, this list must follow (rather than the test silently running the longer version).
SHORTER = {"Budget(pretrain_epochs=5, prune_epochs=3, finetune_epochs=2)":
           "Budget(pretrain_epochs=1, prune_epochs=1, finetune_epochs=1)",
           "epochs=5": "epochs=1", "epochs=3": "epochs=1", "trials=12": "trials=1"}


def _python_example() -> str:
    match = re.search(r"^## Python\n\n```python\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
    assert match, "README.md has no '## Python' section with a python block"
    return match.group(1)


def test_the_python_example_runs(tmp_path):
    code = _python_example()
    for long, short in SHORTER.items():
        assert long in code, f"the README example no longer says {long!r}: update SHORTER"
        code = code.replace(long, short)
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, check=False,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'accuracy'" in done.stdout  # the evaluate / measure line printed
    report = tmp_path / "runs" / "demo"
    assert (report / "report.md").is_file() and (report / "pareto.html").is_file()


def _command_lines() -> list[tuple[str, list[str]]]:
    """(command, its --options) for every `snnprune COMMAND ...` line of the README's shell blocks
    (a line ending in a backslash continues on the next)."""
    text = README.read_text()
    lines: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0]
            match = re.match(r"\s*(?:\.venv/bin/)?snnprune\s+([a-z-]+)(.*)", line)
            if match:
                lines.append((match.group(1), re.findall(r"(?<![\w-])--[a-z][a-z-]*", match.group(2))))
    return lines


def test_every_command_and_option_the_readme_shows_exists(capsys):
    from snnprune.cli._app import main

    lines = _command_lines()
    assert len(lines) >= 12, lines
    for command, options in lines:
        try:
            code = main([command, "--help"])
        except SystemExit as stop:  # click's standalone mode
            code = stop.code
        out = capsys.readouterr().out
        assert code == 0, f"snnprune {command} --help failed"
        missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", out)]
        assert not missing, f"snnprune {command}: README shows {missing}, --help does not"
