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
