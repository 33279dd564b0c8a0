"""The dashboard launcher: the CLI line, an in-process server on loopback, reading while writing."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import warnings

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from snnprune.errors import UserError
from snnprune.reports._dashboard import dashboard_command, serve_dashboard
from snnprune.search._storage import default_storage, open_storage

DIST = {"lr": FloatDistribution(1e-4, 1e-1, log=True)}


def _trial(i: int) -> optuna.trial.FrozenTrial:
    return create_trial(state=TrialState.COMPLETE, values=[0.5 + i / 1000, 1e6 - i], params={"lr": 1e-3},
                        distributions=DIST, user_attrs={"metrics": {"accuracy": 0.5, "macs": 1e6}})


def _study(spec: str, n: int) -> optuna.Study:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name="demo", storage=open_storage(spec, heartbeat=False),
                                    directions=["maximize", "minimize"])
        study.set_metric_names(["accuracy", "macs"])
    for i in range(n):
        study.add_trial(_trial(i))
    return study


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        assert response.status == 200
        return json.loads(response.read())


def _trial_count(base: str) -> tuple[str, int]:
    [summary] = _get(base + "api/studies")["study_summaries"]
    detail = _get(f"{base}api/studies/{summary['study_id']}")
    return summary["study_name"], len(detail["trials"])


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_served_dashboard_lists_the_study_and_its_trials(tmp_path, kind, capsys):
    spec = default_storage(tmp_path) if kind == "sqlite" else str(tmp_path / "journal.log")
    _study(spec, 3)
    with serve_dashboard(tmp_path, port=0, block=False) as server:  # the run folder, resolved
        assert server.host == "127.0.0.1" and server.port > 0
        assert _trial_count(server.url) == ("demo", 3)
    assert server.url in capsys.readouterr().out


def test_dashboard_reads_while_a_search_writes(tmp_path):
    """30 polls in at most ~10 s while another thread adds trials: the writer never fails."""
    spec = default_storage(tmp_path)
    _study(spec, 1)
    writer_errors: list[BaseException] = []
    written = threading.Event()

    def write() -> None:
        try:
            study = optuna.load_study(study_name="demo", storage=open_storage(spec, heartbeat=False))
            for i in range(1, 41):
                study.add_trial(_trial(i))
                time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            writer_errors.append(exc)
        finally:
            written.set()

    counts = []
    with serve_dashboard(spec, port=0, block=False, quiet=True) as server:
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        deadline = time.monotonic() + 10
        for _ in range(30):
            if time.monotonic() > deadline:
                break
            counts.append(_trial_count(server.url)[1])
            time.sleep(0.05)
        assert written.wait(timeout=60)
        writer.join(timeout=5)
        for _ in range(10):  # the dashboard caches trials for 2 s
            final = _trial_count(server.url)[1]
            if final == 41:
                break
            time.sleep(0.5)
    assert not writer_errors, writer_errors
    assert counts and counts == sorted(counts) and final == 41


def test_dashboard_command_for_each_storage(tmp_path):
    url = "sqlite:///runs/demo/study.db"
    command = dashboard_command(url)
    assert command[0].endswith("optuna-dashboard")
    assert command[1:] == [url, "--host", "127.0.0.1", "--port", "8080"]
    journal = dashboard_command(str(tmp_path / "journal.log"), port=9000)
    assert journal[1] == str(tmp_path / "journal.log") and journal[-2:] == ["--storage-class", "JournalFileStorage"]
    assert dashboard_command("postgresql://u:p@db/x", host="0.0.0.0")[2:4] == ["--host", "0.0.0.0"]


def test_dashboard_refuses_a_missing_storage_and_a_busy_port(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        serve_dashboard(default_storage(tmp_path), port=0, block=False)
    spec = default_storage(tmp_path)
    _study(spec, 1)
    with serve_dashboard(spec, port=0, block=False, quiet=True) as first:
        with pytest.raises(UserError, match="choose another --port") as info:
            serve_dashboard(spec, port=first.port, block=False, quiet=True)
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="choose another --port"):  # was an OverflowError traceback
        serve_dashboard(spec, port=70000, block=False, quiet=True)


@pytest.mark.parametrize("host", ["999.1.1.1", "192.0.2.7"])  # unresolvable; not this machine's address
def test_a_bad_host_is_named_as_the_problem_not_the_port(tmp_path, host):
    """The bug: `--host 999.1.1.1` said "Name or service not known; choose another --port"."""
    spec = default_storage(tmp_path)
    _study(spec, 1)
    with pytest.raises(UserError, match=r"; check --host$"):
        serve_dashboard(spec, host=host, port=0, block=False, quiet=True)


def test_dashboard_on_a_sqlite_file_given_as_a_path_says_sqlite_url(tmp_path):
    """`snnprune dashboard runs/x/study.db`: read as a journal it was a UnicodeDecodeError traceback."""
    spec = default_storage(tmp_path)
    _study(spec, 1)
    path = spec[len("sqlite:///"):]
    with pytest.raises(UserError, match="is a SQLite database.*use sqlite:///"):
        serve_dashboard(path, port=0, block=False, quiet=True)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a journal\n")
    with pytest.raises(UserError, match="not an Optuna journal file"):
        serve_dashboard(str(notes), port=0, block=False, quiet=True)


def test_dashboard_opened_while_the_search_stamps_the_schema_opens_again(tmp_path, monkeypatch):
    # bug: started beside a search creating the database, the dashboard's own schema stamp could
    # lose the race and it exited with "cannot open storage ...: UNIQUE constraint failed: alembic_version..."
    import sqlalchemy.exc

    from snnprune.reports import _dashboard

    spec = default_storage(tmp_path)
    _study(spec, 1)
    real, calls = _dashboard.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError(
                "INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed: alembic_version.version_num"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_dashboard, "RDBStorage", racing)
    storage = _dashboard.dashboard_storage(spec)
    assert len(calls) == 2
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["demo"]


def test_dashboard_storage_other_failures_are_one_line(tmp_path, monkeypatch):
    from snnprune.reports import _dashboard

    spec = default_storage(tmp_path)
    _study(spec, 1)

    def broken(*args, **kwargs):
        raise RuntimeError("disk I/O error\nmore detail")

    monkeypatch.setattr(_dashboard, "RDBStorage", broken)
    with pytest.raises(UserError, match=r"^cannot open storage sqlite:///.*: disk I/O error$"):
        _dashboard.dashboard_storage(spec)
