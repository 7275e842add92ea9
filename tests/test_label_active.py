"""Active-learning ranking on hand-made probabilities and embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.errors import ConfigError
from medsift.label.active import (entropy_scores, k_center_greedy, margin_scores, rank, uncertainty_scores)


def test_uncertainty_picks_closest_to_half():
    order, score = rank(np.array([0.9, 0.55, 0.2, 0.5]), strategy="uncertainty", n=4)
    assert order.tolist() == [3, 1, 2, 0]
    assert np.allclose(score, [0.5, 0.45, 0.2, 0.1])


def test_single_label_strategies_agree_on_order():
    p = np.array([[0.9], [0.55], [0.2], [0.02]])
    orders = {s: rank(p, strategy=s, n=4)[0].tolist() for s in ("uncertainty", "margin", "entropy")}
    assert orders == {s: [1, 2, 0, 3] for s in orders}


def test_multilabel_strategies_differ_as_computed_by_hand():
    # A = (0.5, 0.99), B = (0.7, 0.7)
    p = np.array([[0.5, 0.99], [0.7, 0.7]])
    assert np.allclose(uncertainty_scores(p), [1 - 0.5 * 0.99, 1 - 0.49])  # 0.505, 0.51 -> B first
    assert np.allclose(margin_scores(p), [1.0, 1 - (0.49 - 0.21)])  # A's best and second tie -> A first
    h = lambda q: -(q * np.log2(q) + (1 - q) * np.log2(1 - q))  # noqa: E731
    assert np.allclose(entropy_scores(p), [(1.0 + h(0.99)) / 2, h(0.7)])  # 0.540, 0.881 -> B first
    assert rank(p, strategy="margin", n=1)[0].tolist() == [0]
    assert rank(p, strategy="uncertainty", n=1)[0].tolist() == [1]


def test_k_center_greedy_covers_far_points_first():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    order, dist = k_center_greedy(x, 3, labelled=np.array([[0.0]]))
    assert order.tolist() == [4, 2, 1]
    assert np.allclose(dist, [11.0, 2.0, 1.0])


def test_diversity_scores_are_relative_to_first_pick():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    order, score = rank(np.zeros((5, 1)), strategy="diversity", n=2, embeddings=x, labelled_embeddings=x[:1])
    assert order.tolist() == [4, 2]
    assert np.allclose(score, [1.0, 2.0 / 11.0])


def test_random_is_seeded_permutation():
    a = rank(np.zeros((6, 1)), strategy="random", n=6, rng=np.random.default_rng(3))[0]
    b = rank(np.zeros((6, 1)), strategy="random", n=6, rng=np.random.default_rng(3))[0]
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == list(range(6))


def test_diversity_without_embeddings_fails():
    with pytest.raises(ConfigError, match="needs embeddings"):
        rank(np.zeros((3, 1)), strategy="diversity", n=2)


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(ConfigError, match="uncertainty"):
        rank(np.zeros((3, 1)), strategy="coreset", n=2)


def test_probabilities_out_of_range_fail():
    with pytest.raises(ConfigError, match="0..1"):
        uncertainty_scores(np.array([[1.5]]))
