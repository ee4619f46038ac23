"""Imbalance scores against scipy and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy, wasserstein_distance

from imbstat.scores import ClassScores, score_1d, score_2d, w1_uniform


@pytest.mark.parametrize("seed", range(5))
def test_w1_uniform_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, size=rng.integers(2, 40))
    counts[0] += 1
    t = np.linspace(0, 1, counts.size)
    expected = wasserstein_distance(t, t, counts, np.ones(counts.size))  # scipy
    assert w1_uniform(counts) == pytest.approx(expected, abs=1e-12)


def test_score_1d_extremes():
    assert score_1d([7, 7, 7, 7]) == 0.0  # uniform
    assert score_1d([0, 0, 0, 9]) == pytest.approx(1.0)  # point mass at an end
    assert score_1d([5]) == 0.0  # one bin: nothing to be imbalanced about
    assert np.isnan(score_1d([0, 0]))  # no data


def test_class_scores_by_hand():
    instances = np.array([10, 100, 0, 1])
    s = ClassScores.of(instances)
    assert s.imbalance_ratio == 100.0  # 100 / 1, the empty class is not "present"
    pairs = np.abs(instances[:, None] - instances[None, :]).sum()
    assert s.gini == pytest.approx(pairs / (2 * 4**2 * instances.mean()))  # definition, double sum
    assert s.normalized_entropy == pytest.approx(entropy(instances) / np.log(4))  # scipy
    assert s.top10_share == pytest.approx(100 / 111)  # ceil(0.1 · 4) = 1 class: the top one
    t = np.linspace(0, 1, 4)
    rank_frequency = [100, 10, 1, 0]
    assert s.w1_score == pytest.approx(2 * wasserstein_distance(t, t, rank_frequency, np.ones(4)))  # scipy


def test_class_scores_balanced_and_empty():
    s = ClassScores.of(np.array([5, 5, 5]))
    assert (s.imbalance_ratio, s.gini, s.top10_share, s.w1_score) == (1.0, 0.0, pytest.approx(1 / 3), 0.0)
    assert s.normalized_entropy == pytest.approx(1.0)
    assert np.isnan(ClassScores.of(np.zeros(3)).gini)


def test_score_2d_known_answers():
    assert score_2d(np.ones((8, 8))) == pytest.approx(0.0, abs=1e-12)  # uniform
    corner = np.zeros((8, 8))
    corner[0, 0] = 3
    assert score_2d(corner) == pytest.approx(1.0)  # the normaliser itself
    other_corner = np.zeros((8, 8))
    other_corner[7, 7] = 1
    assert score_2d(other_corner) == pytest.approx(1.0)  # symmetric
    # 2×2 grid, half the mass in each of two opposite cells: a quarter moves 0.5 from each, W1 = 0.25;
    # the corner mass moves 1/4 each to distances 0, 0.5, 0.5, sqrt(0.5)/... = 0.7071/2·... (mean 0.4268).
    diagonal = np.array([[1.0, 0.0], [0.0, 1.0]])
    corner_w1 = (0 + 0.5 + 0.5 + np.sqrt(0.5)) / 4
    assert score_2d(diagonal) == pytest.approx(0.25 / corner_w1)
    assert np.isnan(score_2d(np.zeros((4, 4))))


def test_warm_start_gives_the_cold_solution():
    from imbstat.scores import WARM_START_GRID, _emd_grid

    g = WARM_START_GRID
    y, x = np.mgrid[:g, :g]
    centre_map = np.exp(-((x - g / 2) ** 2 + (y - 0.6 * g) ** 2) / (2 * (g / 6) ** 2))  # like real centre maps
    uniform = np.ones((g, g))
    warm, _ = _emd_grid(centre_map, uniform)
    cold, _ = _emd_grid(centre_map, uniform, warm=False)
    assert warm == pytest.approx(cold, rel=1e-12)  # the starting potentials change the path, not the optimum


def test_scores_2d_side_by_side_equal_one_by_one():
    from imbstat.scores import scores_2d

    rng = np.random.default_rng(5)
    maps = [rng.integers(0, 40, (g, g)) for g in (8, 32, 32, 16)] + [np.zeros((4, 4))]
    expected = [score_2d(m) for m in maps]
    found = scores_2d(*maps)
    assert found[:-1] == expected[:-1] and all(0 < v < 1 for v in found[:-1])  # the same floats, in order
    assert np.isnan(found[-1]) and np.isnan(expected[-1])  # an empty map
