from __future__ import annotations

from snnprune.search import RungStore, dominates, passes, should_stop

DIRS = ("maximize", "minimize")


def test_dominates_respects_directions():
    assert dominates([0.9, 10], [0.8, 20], DIRS)
    assert not dominates([0.9, 30], [0.8, 20], DIRS)
    assert not dominates([0.9, 10], [0.9, 10], DIRS)  # equal is not domination
    assert dominates([0.9, 10], [0.9, 11], DIRS)


def test_rule_on_synthetic_curves():
    # four trials reached the rung; three dominate the newcomer -> stop at fraction 0.5
    others = [[0.95, 100], [0.9, 120], [0.93, 90], [0.5, 10]]
    assert should_stop([0.8, 150], others, DIRS, dominated_fraction=0.5, min_trials=4)
    # a trial on the front is never stopped
    assert not should_stop([0.96, 80], others, DIRS, dominated_fraction=0.5, min_trials=4)
    # too few trials reached the rung to judge
    assert not should_stop([0.1, 1e9], others[:3], DIRS, dominated_fraction=0.5, min_trials=4)
    # a stricter fraction keeps it
    assert not should_stop([0.8, 150], others, DIRS, dominated_fraction=1.0, min_trials=4)


def test_rule_does_not_favour_one_objective():
    # cheap but inaccurate trials are not stopped just because accuracy is low
    others = [[0.95, 100], [0.94, 110], [0.96, 105], [0.93, 120]]
    assert not should_stop([0.6, 10], others, DIRS, dominated_fraction=0.5, min_trials=4)


def test_rung_store_shares_records(tmp_path):
    store = RungStore(tmp_path / "rungs.db")
    store.record("s", "1", 1, [0.9, 10])
    store.record("s", "2", 1, [0.8, 20])
    store.record("other", "3", 1, [0.1, 1])
    store.record("s", "1", 2, [0.95, 10])
    again = RungStore(tmp_path / "rungs.db")
    assert sorted(again.others("s", "3", 1)) == [[0.8, 20], [0.9, 10]]
    assert again.others("s", "1", 1) == [[0.8, 20]]


def test_default_fraction_is_the_modes_everywhere():
    """The schema, the runner's policy, the parser and the plain rule agree on each mode's default:
    a quarter to stop (final), a tenth to pause (a paused trial goes on once the rule lets it)."""
    from snnprune.search._runner import RungPolicy
    from snnprune.spaces import DEFAULT_FRACTIONS, Rungs, load_space, parse_space

    assert DEFAULT_FRACTIONS == {"stop": 0.25, "promote": 0.1}
    assert Rungs().dominated_fraction == RungPolicy().dominated_fraction == 0.1  # promote is the default mode
    assert Rungs(mode="stop").dominated_fraction == RungPolicy(mode="stop").dominated_fraction == 0.25
    assert Rungs(mode="stop", dominated_fraction=0.5).dominated_fraction == 0.5  # given: kept in any mode
    assert RungPolicy(mode="promote", dominated_fraction=0.3).dominated_fraction == 0.3
    others = [[0.95, 100], [0.5, 10], [0.6, 20], [0.7, 30]]
    # dominated by one of four: stops at the default, not at a half
    assert should_stop([0.8, 150], others, DIRS, min_trials=4)
    assert not should_stop([0.8, 150], others, DIRS, dominated_fraction=0.5, min_trials=4)
    # of ten, dominated by two: the stop default (2.5 needed) lets it go on, the promote default does not
    ten = [[0.95, 100], [0.9, 120]] + [[0.5 - 0.01 * i, 10 + i] for i in range(8)]
    assert not should_stop([0.8, 150], ten, DIRS, min_trials=4)
    assert not passes([0.8, 150], ten, DIRS, min_trials=4)
    assert passes([0.99, 150], ten, DIRS, min_trials=4)

    raw = load_space("demo").to_dict()
    for block, expected in (({"epochs": [1]}, 0.1), ({"epochs": [1], "mode": "stop"}, 0.25),
                            ({"epochs": [1], "mode": "stop", "dominated_fraction": 0.4}, 0.4)):
        space = parse_space({**raw, "rungs": block}, source="<test>")
        assert space.rungs.dominated_fraction == expected
        assert parse_space(space.to_dict(), source="<test>") == space  # the resolved fraction round-trips


def test_noise_margin_is_the_standard_error_of_an_accuracy():
    from snnprune.search import noise_margin

    assert abs(noise_margin(0.8375, 400) - 0.01845) < 1e-4  # Fashion-MNIST's 400 validation images
    assert abs(noise_margin(0.9, 145) - 0.02491) < 1e-4
    assert noise_margin(1.0, 400) == noise_margin(0.0, 400) == 0.0
    assert noise_margin(0.8, 0) == 0.0  # no examples: no margin (a rung without a val split never gets here)


def test_with_a_margin_equal_accuracy_and_a_little_less_cost_is_not_domination():
    """What paused a front configuration on Fashion-MNIST: two trials of the same rung accuracy
    and 3-6 % fewer MACs dominated it. Within the accuracy's noise they do not."""
    from snnprune.search import noise_margin

    judged = [0.8375, 100.0]
    tol = [noise_margin(judged[0], 400), 0.0]
    same_cheaper = [[0.8375, 94.0], [0.8375, 97.0]]
    assert all(dominates(o, judged, DIRS) for o in same_cheaper)
    assert not any(dominates(o, judged, DIRS, tol) for o in same_cheaper)
    assert not dominates([0.8500, 94.0], judged, DIRS, tol)  # 5 images more of 400: under the margin
    assert dominates([0.8575, 100.0], judged, DIRS, tol)  # 8 images more, same cost: beyond it
    assert not dominates([0.8575, 101.0], judged, DIRS, tol)  # ... but no cost may be worse
    assert dominates([0.9, 10], [0.8, 20], DIRS, [0.0, 0.0]) and not dominates([0.9, 10], [0.9, 10], DIRS, [0.0, 0.0])

    others = same_cheaper + [[0.80, 50.0], [0.81, 60.0]]
    assert not passes(judged, others, DIRS, min_trials=4)  # two of four dominate: over a tenth
    assert passes(judged, others, DIRS, min_trials=4, tolerance=tol)
    assert should_stop(judged, others, DIRS, min_trials=4)
    assert not should_stop(judged, others, DIRS, min_trials=4, tolerance=tol)


def test_a_paused_trial_is_promoted_by_its_own_recorded_margin(tmp_path):
    store = RungStore(tmp_path / "rungs.db")
    for trial, vector in (("1", [0.8375, 94.0]), ("2", [0.8375, 97.0]), ("3", [0.80, 50.0]), ("4", [0.81, 60.0])):
        store.record("s", trial, 1, vector, [0.018, 0.0])
    rule = {"dominated_fraction": 0.1, "min_trials": 4, "enqueue": lambda pause: None}
    store.record("s", "0", 1, [0.8375, 100.0])  # no margin recorded: plain dominance
    store.pause("s", "0", 1, "c0")
    assert store.promote_one("s", DIRS, **rule) is None
    store.record("s", "0", 1, [0.8375, 100.0], [0.018, 0.0])  # within its noise of the two cheaper ones
    assert store.promote_one("s", DIRS, **rule).trial == "0"


def test_a_rung_store_written_before_margins_opens_and_reads_as_plain_dominance(tmp_path):
    import sqlite3

    path = tmp_path / "rungs.db"
    with sqlite3.connect(path) as db:  # the tables as they were before the ``tol`` column
        db.execute("CREATE TABLE rungs (study TEXT, trial TEXT, rung INTEGER, vals TEXT, "
                   "PRIMARY KEY (study, trial, rung))")
        db.execute("CREATE TABLE pauses (study TEXT, trial TEXT, rung INTEGER, checkpoint TEXT, state TEXT, "
                   "number INTEGER, PRIMARY KEY (study, trial, rung))")
        for trial, vector in (("0", "[0.8, 100.0]"), ("1", "[0.8, 90.0]"), ("2", "[0.5, 10.0]")):
            db.execute("INSERT INTO rungs VALUES ('s', ?, 1, ?)", (trial, vector))
        db.execute("INSERT INTO pauses VALUES ('s', '0', 1, 'c0', 'paused', 0)")
    store = RungStore(path)
    rule = {"dominated_fraction": 0.1, "min_trials": 2, "enqueue": lambda pause: None}
    assert store.promote_one("s", DIRS, **rule) is None  # "1" dominates it, as before
    store.record("s", "3", 1, [0.9, 5.0], [0.02, 0.0])
    assert sorted(store.others("s", "0", 1)) == [[0.5, 10.0], [0.8, 90.0], [0.9, 5.0]]


def test_the_runner_records_each_rung_accuracys_margin(tmp_path):
    """``auto``: the standard error on the validation images; a number: that margin; 0 (the
    default): none. Costs are exact, so their margin is 0 whatever the setting."""
    from snnprune.search import RungPolicy, noise_margin
    from snnprune.spaces import Rungs

    assert Rungs().margin == RungPolicy().margin == 0
    objectives, partial = ("macs", "accuracy"), [100.0, 0.85]
    assert RungPolicy(margin="auto").tolerance(objectives, partial, 400) == [0.0, noise_margin(0.85, 400)]
    assert RungPolicy(margin=0.01).tolerance(objectives, partial, 400) == [0.0, 0.01]
    assert RungPolicy().tolerance(objectives, partial, 400) == [0.0, 0.0]
