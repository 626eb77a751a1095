"""The anomaly head's numerics, each against an independent computation."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from inspection.anomaly_fit import auroc, calibrate_threshold, greedy_coreset, outliers, split_holdout, whitening


def correlated(n: int = 4000, dim: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spread = np.diag([9.0, 5.0, 3.0, 1.0, 0.3, 0.05])[:dim, :dim]
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    return rng.normal(size=(n, dim)) @ spread @ rotation + 3.0


def test_whitening_gives_unit_covariance_without_a_ridge():
    x = correlated()
    mean, w = whitening(x, ridge=0.0)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(np.cov((x - mean) @ w, rowvar=False), np.eye(6), atol=1e-3)


def test_whitening_with_a_ridge_shrinks_only_the_quiet_directions():
    x = correlated()
    _, w = whitening(x, ridge=1.0)
    var = np.var((x - x.mean(axis=0)) @ w, axis=0, ddof=1)
    # independent: the principal variances from the singular values of the centred data
    eig = np.sort(np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2 / (len(x) - 1))
    np.testing.assert_allclose(var, eig / (eig + eig.mean()), rtol=1e-3)  # lambda / (lambda + ridge * mean)


def test_whitening_keeps_the_largest_directions_when_asked():
    x = correlated()
    _, full = whitening(x)
    _, top = whitening(x, dims=2)
    assert top.shape == (6, 2)
    np.testing.assert_allclose(top, full[:, -2:])
    # the two kept axes are the two widest: they explain 9^2 + 5^2 of the 9^2+5^2+3^2+1+0.09+0.0025
    captured = np.var((x - x.mean(axis=0)) @ (top / np.linalg.norm(top, axis=0)), axis=0, ddof=1).sum()
    assert captured == pytest.approx(81 + 25, rel=0.05)
    assert whitening(x, dims=6)[1].shape == (6, 6) and whitening(x, dims=99)[1].shape == (6, 6)


def test_auroc_equals_the_fraction_of_correctly_ordered_pairs():
    rng = np.random.default_rng(1)
    good = rng.normal(0, 1, 60).round(1)  # rounding makes ties
    bad = rng.normal(1, 1, 40).round(1)
    pairs = [(1.0 if b > g else 0.5 if b == g else 0.0) for g in good for b in bad]
    assert auroc(good, bad) == pytest.approx(np.mean(pairs))
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0


def test_threshold_is_the_lognormal_quantile_or_above_every_held_out_score():
    logs = [-0.1, -0.05, 0.0, 0.05, 0.1]  # log-mean 0, sample sd sqrt(0.025 / 4)
    expected = math.exp(2.326 * statistics.stdev(logs))  # upper 1 % point of that log-normal
    assert calibrate_threshold(np.exp(logs)) == pytest.approx(expected, rel=1e-6)
    few = np.array([1.0, 1.1, 0.9, 3.0])  # one outlier above the fitted quantile
    assert calibrate_threshold(few) > 3.0
    with pytest.raises(ValueError):
        calibrate_threshold([1.0, 0.0])


def test_coreset_covers_every_cluster_first():
    rng = np.random.default_rng(3)
    centres = rng.uniform(-100, 100, (5, 8))
    points = np.concatenate([c + rng.normal(0, 0.5, (200, 8)) for c in centres])
    chosen = greedy_coreset(points, 5, seed=0, project_dim=8)
    assert sorted(set(chosen // 200)) == [0, 1, 2, 3, 4]  # farthest-point picks one per cluster
    assert len(set(greedy_coreset(points, 50, seed=0))) == 50


def test_holdout_split_is_seeded_and_disjoint():
    fit, hold = split_holdout(50, 0.2, seed=4)
    assert len(hold) == 10 and len(fit) == 40 and not set(fit) & set(hold)
    assert np.array_equal(hold, split_holdout(50, 0.2, seed=4)[1])
    with pytest.raises(ValueError):
        split_holdout(2, 0.2, seed=0)


def test_outliers_are_the_scores_far_above_a_robust_lognormal_fit():
    rng = np.random.default_rng(5)
    scores = np.exp(rng.normal(2.0, 0.05, 150))
    assert outliers(scores).size == 0  # a clean log-normal sample of 150: nothing beyond 1 in 1000
    odd = scores.copy()
    odd[[10, 99]] = [np.exp(2.5), np.exp(2.8)]  # 10 and 16 sd above: a defect among the good photos
    assert outliers(odd).tolist() == [99, 10]  # highest first
    assert outliers(np.ones(5)).size == 0  # no spread: nothing stands out
