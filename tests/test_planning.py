import json
import warnings

import numpy as np
import pytest
from conftest import make_scores

import archguide as ag
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.planning import L1_EPS, allocate_units, l1_strengths, plan_architecture

FRIEDMAN_LIKE = {"a": 0.6, "b": 0.4, "c": 0.2, "d": 0.12, "e": 0.08, **{f"n{i}": 0.0004 * i for i in range(10)}}
NOISE = [f"n{i}" for i in range(10)]


def _assert_allocation(units, weights, total, floor):
    assert sum(units) == total
    assert min(units) >= floor
    order = np.argsort(weights, kind="stable")
    for lo, hi in zip(order[:-1], order[1:]):
        if weights[hi] > weights[lo]:
            assert units[hi] >= units[lo], (weights, units)


# ------------------------------------------------------------------ allocation


@pytest.mark.parametrize("total", [12, 24, 64, 100, 128, 1000])
@pytest.mark.parametrize("min_units", [1, 4])
@pytest.mark.parametrize(
    "weights",
    [[1.0], [0.5, 0.5], [0.9, 0.1], [0.6, 0.3, 0.1], [1, 1e-6, 0.0], [3, 2, 2, 1, 0.5], [0, 0, 0], [7, 7, 7]],
)
def test_allocate_units_sums_floors_and_is_monotone(total, min_units, weights):
    if total < min_units * len(weights):
        with pytest.raises(ConfigError, match=f"the minimum is {min_units * len(weights)}"):
            allocate_units(weights, total, min_units=min_units)
        return
    units = allocate_units(weights, total, min_units=min_units)
    _assert_allocation(units, weights, total, min_units)


def test_allocate_units_random_weights_property():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 9))
        weights = rng.exponential(size=k) * (rng.random(k) > 0.2)
        min_units = int(rng.integers(1, 6))
        total = int(rng.integers(min_units * k, 400))
        _assert_allocation(allocate_units(weights, total, min_units=min_units), weights, total, min_units)


def test_allocate_units_is_proportional_above_the_floor():
    assert allocate_units([3, 1], 40, min_units=1) == [30, 10]
    assert allocate_units([0.9, 0.05, 0.05], 24, min_units=4) == [16, 4, 4]


# ------------------------------------------------------------------ the plan


@pytest.mark.parametrize("total_units", [16, 37, 128, 512])
@pytest.mark.parametrize("n_tiers", [1, 2, 3, 5])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_plan_invariants(total_units, n_tiers, alpha):
    scores = make_scores(FRIEDMAN_LIKE, weak=NOISE)  # 5 strong features + weak ones: n_tiers branches
    if total_units < 4 * n_tiers:
        with pytest.raises(ConfigError, match=f"the minimum is {4 * n_tiers}"):
            plan_architecture(scores, total_units=total_units, n_tiers=n_tiers, alpha=alpha, min_units=4)
        return
    plan = plan_architecture(scores, total_units=total_units, n_tiers=n_tiers, alpha=alpha, min_units=4)
    assert len(plan.branches) == n_tiers
    widths = [b.units[0] for b in plan.branches]
    assert sum(widths) == total_units == plan.total_units
    assert min(widths) >= 4
    importance = [b.importance for b in plan.branches]
    assert importance == sorted(importance, reverse=True)  # most important branch first
    assert widths == sorted(widths, reverse=True)  # ... never gets fewer units
    read = [f for b in plan.branches for f in b.features]
    assert sorted(read) == sorted(FRIEDMAN_LIKE)  # every feature read exactly once (weak='penalize')
    assert plan.features == tuple(FRIEDMAN_LIKE)


def test_tiers_cut_where_importance_drops_most_and_weak_take_the_last():
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), n_tiers=3)
    # log-ratios between neighbours: a/b 0.41, b/c 0.69, c/d 0.51, d/e 0.41: the cut is b | c.
    assert [b.features for b in plan.branches] == [("a", "b"), ("c", "d", "e"), tuple(NOISE)]
    assert [b.name for b in plan.branches] == ["tier_1", "tier_2", "tier_3"]


def test_kept_features_that_weigh_less_than_the_weak_tier_take_no_tier_of_their_own():
    # "k" was kept by the weak test but weighs less than the weak tier (0.018 in all): it places no cut.
    importances = {**FRIEDMAN_LIKE, "k": 0.001}
    plan = plan_architecture(make_scores(importances, weak=NOISE), n_tiers=3)
    assert [b.features for b in plan.branches] == [("a", "b"), ("c", "d", "e", "k"), tuple(NOISE)]
    # heavier than the weak tier it is an ordinary kept feature: here the steepest drop isolates it
    plan = plan_architecture(make_scores({**importances, "k": 0.03}, weak=NOISE), n_tiers=3)
    assert [b.features for b in plan.branches] == [("a", "b", "c", "d", "e"), ("k",), tuple(NOISE)]
    # when every kept feature together weighs less than the weak tier, the cuts are placed among them all
    plan = plan_architecture(make_scores({"a": 0.001, "b": 0.0001, "n": 0.002}, weak=["n"]), n_tiers=3)
    assert [b.features for b in plan.branches] == [("a",), ("b",), ("n",)]


def test_depth_and_shrink_rule():
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), total_units=128, depth=3, min_units=4)
    for b in plan.branches:
        assert len(b.units) == 3
        assert b.units[1:] == (max(4, round(b.units[0] * 0.5)), max(4, round(b.units[0] * 0.25)))


def test_different_tiers_same_input():
    scores = make_scores(FRIEDMAN_LIKE, weak=NOISE)
    plans = [plan_architecture(scores, n_tiers=k, grouping=g) for k in (1, 2, 4) for g in ("tiers", "groups")]
    plans.append(plan_architecture(scores, weak="drop"))
    assert len({p.features for p in plans}) == 1


def test_grouping_by_groups():
    groups = {"pair": ["a", "c"], "b": ["b"], "rest": ["d", "e", *NOISE]}
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE, groups=groups), grouping="groups")
    assert [b.name for b in plan.branches] == ["pair", "b", "rest"]
    assert plan.branches[0].features == ("a", "c")


def test_weak_drop_reads_no_weak_feature():
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), weak="drop", n_tiers=3)
    read = {f for b in plan.branches for f in b.features}
    assert read.isdisjoint(NOISE)
    assert set(plan.features) >= set(NOISE)
    assert "not read by any branch" in plan.summary()


def test_weak_drop_of_everything_is_an_error():
    with pytest.raises(DataError, match="every feature"):
        plan_architecture(make_scores({"a": 0.001, "b": 0.002}, weak=["a", "b"]), weak="drop")


def test_all_zero_importance_gives_an_even_plan_and_a_warning():
    scores = make_scores({"a": 0.0, "b": -0.01, "c": 0.0}, weak=["a", "b", "c"])
    with pytest.warns(ArchguideWarning, match="zero"):
        plan = plan_architecture(scores, total_units=30, grouping="groups", min_units=2)
    assert [b.units[0] for b in plan.branches] == [10, 10, 10]
    assert len(set(plan.l1_strengths.values())) == 1


def test_one_feature():
    plan = plan_architecture(make_scores({"only": 0.5}), total_units=8)
    assert [(b.features, b.units[0]) for b in plan.branches] == [(("only",), 8)]


def test_thousand_features():
    rng = np.random.default_rng(0)
    importances = {f"f{i}": float(v) for i, v in enumerate(rng.exponential(size=1000))}
    plan = plan_architecture(make_scores(importances), total_units=512, n_tiers=4)
    assert plan.total_units == 512 and len(plan.features) == 1000


def test_plan_from_real_scores(friedman_scores):
    plan = plan_architecture(friedman_scores, total_units=64)
    top = plan.branches[0]
    assert set(top.features) <= {f"x{i}" for i in range(5)}
    weak = set(friedman_scores.weak[friedman_scores.weak].index)
    assert set(plan.branches[-1].features) == weak and len(weak) >= 14  # at most one of the 15 noise kept
    assert weak <= {f"x{i}" for i in range(5, 20)}


# ------------------------------------------------------------------ penalties


def test_l1_rule_order_and_scale():
    importances = {"top": 1.0, "mid": 0.5, "low": 0.1, "zero": 0.0, "negative": -0.2}
    s = l1_strengths(importances, l1=1e-3, l1_power=1.0)
    assert s["top"] == pytest.approx(1e-3)
    assert s["top"] < s["mid"] < s["low"] < s["zero"]
    assert s["zero"] == s["negative"] == pytest.approx(1e-3 * (1 + L1_EPS) / L1_EPS)
    assert np.isfinite(list(s.values())).all()
    steep = l1_strengths(importances, l1=1e-3, l1_power=2.0)
    assert steep["low"] / steep["top"] > s["low"] / s["top"]  # power makes it steeper
    flat = l1_strengths(importances, l1=1e-3, l1_power=0.0)
    assert set(flat.values()) == {1e-3}


def test_weak_features_get_the_strongest_strength():
    s = l1_strengths({"a": 1.0, "b": 0.3, "c": 0.2}, weak=["b"])
    assert s["b"] == max(s.values()) > s["c"]


def test_plan_strengths_follow_the_rule(friedman_scores):
    plan = plan_architecture(friedman_scores, l1=0.01, l1_power=1.5)
    expected = l1_strengths(friedman_scores.importances, l1=0.01, l1_power=1.5, weak=plan.weak)
    assert plan.l1_strengths == expected
    assert min(plan.l1_strengths, key=plan.l1_strengths.get) == friedman_scores.importances.idxmax()


# ------------------------------------------------------------------ round trips


def test_dict_json_and_yaml_round_trip():
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), total_units=50, depth=3, head_units=(32, 8))
    assert ag.ArchitecturePlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert ag.ArchitecturePlan.from_yaml(plan.to_yaml()) == plan


def test_from_dict_rejects_a_branch_reading_unknown_features():
    data = plan_architecture(make_scores({"a": 1.0, "b": 0.5})).to_dict()
    data["branches"][0]["features"].append("ghost")
    with pytest.raises(DataError, match="'ghost'"):
        ag.ArchitecturePlan.from_dict(data)
    with pytest.raises(DataError, match="missing keys"):
        ag.ArchitecturePlan.from_dict({"features": []})


def test_a_plan_checked_against_other_scores():
    plan = plan_architecture(make_scores({"a": 1.0, "b": 0.5, "c": 0.1}))
    plan.validate(make_scores({"a": 0.3, "b": 0.2, "c": 0.0}))
    with pytest.raises(DataError, match="'c' are not in the scores"):
        plan.validate(make_scores({"a": 0.3, "b": 0.2}))


def test_summary_is_readable():
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), total_units=64)
    text = plan.summary()
    assert "tier_1" in text and "[" in text and "parameters" in text and "L1 strengths" in text
    assert str(plan) == text


# ------------------------------------------------------------------ bad options


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"total_units": 8, "min_units": 4}, "the minimum is 12"),
        ({"total_units": 0}, "total_units"),
        ({"min_units": -1}, "min_units"),
        ({"depth": 0}, "depth"),
        ({"n_tiers": 1.5}, "n_tiers"),
        ({"grouping": "clusters"}, "grouping"),
        ({"weak": "ignore"}, "weak"),
        ({"alpha": -1}, "alpha"),
        ({"l1": -0.1}, "l1"),
        ({"l1_power": float("nan")}, "l1_power"),
        ({"head_units": (16, 0)}, "head_units"),
        ({"head_units": ()}, "head is not optional"),
        ({"head_units": "wide"}, "head_units"),
        ({"embedding": -4}, "embedding"),
        ({"embedding": 8, "embeddable": ["a", "zz"]}, "embeddable names features that are not scored: 'zz'"),
    ],
)
def test_bad_options_raise_config_error(options, match):
    with pytest.raises(ConfigError, match=match):
        plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), **options)


def test_no_warning_for_ordinary_scores():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE))


# ------------------------------------------------------------------ soundness


def _edited(plan, **changes):
    data = plan.to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"branches": []}, "no branch"),
        ({"head_units": []}, "head is not optional"),
        ({"l1_strengths": {"a": -0.1, "b": 0.001, "c": 0.01}}, r"finite numbers >= 0; features 'a'"),
        ({"l1_strengths": {"a": float("inf"), "b": 0.001, "c": 0.01}}, "finite numbers >= 0"),
        ({"features": ["a", "b", "c", "a"]}, "'a' more than once"),
    ],
)
def test_validate_refuses_plans_that_cannot_be_built(changes, match):
    plan = plan_architecture(make_scores({"a": 1.0, "b": 0.5, "c": 0.1}))
    with pytest.raises(DataError, match=match):
        ag.ArchitecturePlan.from_dict(_edited(plan, **changes))


def test_validate_refuses_unsafe_or_repeated_branch_names():
    plan = plan_architecture(make_scores({"a": 1.0, "b": 0.5, "c": 0.1}), n_tiers=2)
    data = plan.to_dict()
    data["branches"][0]["name"] = "größe"
    with pytest.raises(DataError, match="cannot name Keras layers"):
        ag.ArchitecturePlan.from_dict(data)
    data["branches"][0]["name"] = data["branches"][1]["name"]
    with pytest.raises(DataError, match="used more than once"):
        ag.ArchitecturePlan.from_dict(data)


def test_plans_hash_by_content():
    scores = make_scores(FRIEDMAN_LIKE, weak=NOISE)
    a, b = plan_architecture(scores, total_units=64), plan_architecture(scores, total_units=64)
    assert a == b and hash(a) == hash(b)
    assert len({a, b, plan_architecture(scores, total_units=32)}) == 2


def test_many_weak_features_never_outweigh_a_stronger_tier():
    # the kept features together (0.35) weigh less than the 60 weak ones (0.36): the cuts fall among them all
    importances = {"a": 0.2, "b": 0.1, "c": 0.03, "d": 0.02, **{f"w{i}": 0.006 for i in range(60)}}
    weak = [f"w{i}" for i in range(60)]
    plan = plan_architecture(make_scores(importances, weak=weak), total_units=64, n_tiers=3)
    assert [b.name for b in plan.branches] == ["tier_1", "tier_2", "tier_3"]
    assert plan.branches[2].features == tuple(weak)  # the weak tier, last
    widths = [b.units[0] for b in plan.branches]
    assert widths == sorted(widths, reverse=True), widths
    assert sum(widths) == 64
    assert plan.branches[1].features == ("c", "d")
    assert plan.branches[2].importance > plan.branches[1].importance  # what used to buy it the units


def test_branch_names_are_safe_for_any_column_name():
    names = ["größe", "a b", "x/y", "-", "日本", "größe!"]
    plan = plan_architecture(make_scores(dict(zip(names, [0.9, 0.7, 0.5, 0.3, 0.2, 0.1]))), grouping="groups")
    branch_names = [b.name for b in plan.branches]
    assert branch_names == ["groe", "a_b", "x_y", "branch", "branch_2", "groe_2"]
    assert [b.features[0] for b in plan.branches] == names  # the features keep their own names


# ------------------------------------------------------------------ embeddings


def test_embeddings_are_richer_for_important_features_and_absent_for_weak_ones():
    scores = make_scores(FRIEDMAN_LIKE, weak=NOISE)
    plan = plan_architecture(scores, embedding=16, embeddable=[f for f in FRIEDMAN_LIKE if f != "b"])
    tier = {f: i for i, b in enumerate(plan.branches) for f in b.features}
    assert "b" not in plan.embeddings  # not embeddable (a one-hot level, say)
    assert not set(NOISE) & set(plan.embeddings)  # weak: none
    embedded = sorted(plan.embeddings, key=lambda f: -FRIEDMAN_LIKE[f])
    widths = [plan.embeddings[f] for f in embedded]
    assert widths[0] == 16 and widths == sorted(widths, reverse=True)  # never richer for a weaker tier
    assert all(plan.embeddings[f] > plan.embeddings[g] for f in embedded for g in embedded if tier[f] < tier[g])
    assert plan_architecture(scores).embeddings == {}  # off by default
    again = ag.ArchitecturePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan and again.embeddings == plan.embeddings
    # A plan saved before embeddings existed has none.
    old = {k: v for k, v in plan_architecture(scores).to_dict().items() if k != "embeddings"}
    assert ag.ArchitecturePlan.from_dict(old).embeddings == {}


def test_a_replan_keeps_the_embedding_options():
    from archguide.model.replanning import replan_from

    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), embedding=8, embeddable=["a", "c", "n0"])
    moved = {**FRIEDMAN_LIKE, "n0": 0.5}  # n0 turns out strong: a re-plan embeds it, "b" stays plain
    again = replan_from(plan, make_scores(moved, weak=[f for f in NOISE if f != "n0"]))
    assert again.embeddings["n0"] == 8 and "b" not in again.embeddings and "n0" not in plan.embeddings


# A categorical column "c" of 30 levels (importance falling with the level), "d" of two, "w" of ten weak ones.
LEVELS = {f"c={i}": 0.2 / (1 + i) for i in range(30)}
CATEGORICAL = {"c": list(LEVELS), "d": ["d=x", "d=y"], "w": [f"w={i}" for i in range(10)]}
WITH_LEVELS = {"num": 0.5, **LEVELS, "d=x": 0.3, "d=y": 0.25, **{f: 0.0001 for f in CATEGORICAL["w"]}}


def test_category_embeddings_block_a_columns_levels_per_branch_and_leave_small_and_weak_blocks_one_hot():
    scores = make_scores(WITH_LEVELS, weak=CATEGORICAL["w"])
    plan = plan_architecture(scores, category_embedding=8, categorical=CATEGORICAL)
    blocks = [(i, block, width) for i, b in enumerate(plan.branches) for block, width in b.categories]
    assert blocks  # the 30 levels of c are spread over the tiers: each tier embeds the ones it reads
    for i, block, width in blocks:
        assert set(block) <= set(CATEGORICAL["c"]) and set(block) <= set(plan.branches[i].features)
        assert width == 8 >> i and len(block) > width  # half the width per branch, only where it saves rows
    for i, b in enumerate(plan.branches):  # every level of c a branch reads is in its one block, or none is
        levels = tuple(f for f in b.features if f in CATEGORICAL["c"])
        assert b.categories == (((levels, 8 >> i),) if 8 >> i >= 2 and len(levels) > 8 >> i else ())
    embedded = {f for _, block, _ in blocks for f in block}
    assert not embedded & set(CATEGORICAL["w"]) and not embedded & {"d=x", "d=y"}  # weak; two levels: one-hot
    for b in plan.branches:  # the first layer reads the plain features, then the embeddings
        assert len(b.first_layer_rows) == len(b.features) - sum(len(k) for k, _ in b.categories) + sum(
            w for _, w in b.categories
        )
    assert all(not b.categories for b in plan_architecture(scores).branches)  # off by default
    # A table without categorical columns has nothing to embed: the plan is the plain one.
    assert (
        plan_architecture(scores, category_embedding=8, categorical={}).branches == plan_architecture(scores).branches
    )
    again = ag.ArchitecturePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan and [b.categories for b in again.branches] == [b.categories for b in plan.branches]
    # A plan saved before category embeddings has none, and a re-plan keeps the option.
    old = plan_architecture(scores).to_dict()
    assert all("categories" not in b for b in old["branches"])
    from archguide.model.replanning import replan_from

    assert [b.categories for b in replan_from(plan, scores).branches] == [b.categories for b in plan.branches]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"category_embedding": -1}, ConfigError, "category_embedding"),
        ({"category_embedding": 8}, ConfigError, "category_embedding needs categorical="),
        ({"category_embedding": 8, "categorical": {"c": ["c=0", "zz"]}}, ConfigError, "not scored: 'zz'"),
    ],
)
def test_category_embedding_options_out_of_range_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        plan_architecture(make_scores(WITH_LEVELS), **kwargs)


def test_validate_refuses_a_category_block_outside_its_branch():
    plan = plan_architecture(make_scores(WITH_LEVELS), category_embedding=8, categorical=CATEGORICAL)
    data = plan.to_dict()
    data["branches"][0]["categories"] = [[["num", "ghost"], 4]]
    with pytest.raises(DataError, match="each category block must list features the branch reads"):
        ag.ArchitecturePlan.from_dict(data)


def test_validate_refuses_embeddings_of_unknown_features():
    plan = plan_architecture(make_scores(FRIEDMAN_LIKE, weak=NOISE), embedding=8)
    data = {**plan.to_dict(), "embeddings": {"a": 8, "ghost": 4}}
    with pytest.raises(DataError, match="embeddings must map plan features.*'ghost'"):
        ag.ArchitecturePlan.from_dict(data)
