"""Two workers on one study in a real PostgreSQL server, started on loopback in a temp folder.

`.ci/run` installs Debian's postgresql; where the binaries are absent the test says so and
skips. PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest

from snnprune.search import optimize


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql; .ci/run does it)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        prefix = ["runuser", "-u", "postgres", "--"]
    # pytest's temp root is private to root (0700); the server user must reach its folder
    root = Path(tempfile.mkdtemp(prefix="snnprune-pg-"))
    os.chmod(root, 0o755)
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    os.chmod(sockets, 0o777)
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-U", "snn", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                             f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "snn", "snnprune"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql://snn@127.0.0.1:{port}/snnprune"
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_on_postgresql_lose_and_duplicate_nothing(postgres_url, tiny_space, tmp_path):
    summary = optimize(tiny_space(study="pg", trials=4), run_dir=tmp_path / "pg", storage=postgres_url,
                       workers=2, quiet=True)
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers)))
    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert 4 <= len(done) <= 5  # 5 only if both workers end a trial in the same instant
    assert summary["storage"].startswith("postgresql://")
