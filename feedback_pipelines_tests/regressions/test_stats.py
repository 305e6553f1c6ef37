"""The statistics module against scipy.stats, published values and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from feedback_pipelines import stats

# --------------------------------------------------------------------------- intervals


def test_wilson_matches_scipy_on_a_grid_including_zero_and_n():
    cases = [(0, 1), (1, 1), (0, 30), (30, 30), (3, 40), (17, 60), (250, 1000), (999, 1000)]
    x = np.array([c[0] for c in cases])
    n = np.array([c[1] for c in cases])
    low, high = stats.wilson_interval(x, n)
    for i, (xi, ni) in enumerate(cases):
        ref = sps.binomtest(xi, ni).proportion_ci(confidence_level=0.95, method="wilson")
        assert low[i] == pytest.approx(ref.low, abs=1e-12)
        assert high[i] == pytest.approx(ref.high, abs=1e-12)
    low99, high99 = stats.wilson_interval(17, 60, confidence=0.99)
    ref = sps.binomtest(17, 60).proportion_ci(confidence_level=0.99, method="wilson")
    assert (float(low99), float(high99)) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_is_nan_without_trials():
    low, high = stats.wilson_interval([0, 3], [0, 10])
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert 0 < low[1] < 0.3 < high[1] < 1


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((0, 10, 0, 10), (-0.2775, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
        ((10, 10, 0, 10), (0.6075, 1.0000)),
    ],
)
def test_newcombe_interval_matches_published_values(counts, expected):
    low, high = stats.newcombe_interval(*counts)
    assert (float(low), float(high)) == pytest.approx(expected, abs=1e-4)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("counts", [(30, 100, 20, 120), (5, 400, 15, 380), (250, 1000, 230, 990)])
def test_two_proportion_z_is_pearson_chi2_without_correction(counts):
    x1, n1, x2, n2 = counts
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    chi2 = sps.chi2_contingency(table, correction=False)
    z, p_two = stats.two_proportion_z(x1, n1, x2, n2, "two-sided")
    assert float(z) ** 2 == pytest.approx(chi2.statistic, rel=1e-10)
    assert float(p_two) == pytest.approx(chi2.pvalue, rel=1e-9)
    _, p_greater = stats.two_proportion_z(x1, n1, x2, n2, "greater")
    _, p_less = stats.two_proportion_z(x1, n1, x2, n2, "less")
    assert float(p_greater) == pytest.approx(sps.norm.sf(float(z)), rel=1e-9)
    assert float(p_greater) + float(p_less) == pytest.approx(1.0)


def test_two_proportion_z_without_variation_gives_no_evidence():
    z, p = stats.two_proportion_z([0, 50, 3], [40, 50, 0], [0, 60, 1], [50, 60, 10], "greater")
    assert list(z[:2]) == [0.0, 0.0] and list(p[:2]) == [1.0, 1.0]
    assert math.isnan(z[2]) and math.isnan(p[2])  # an empty side: no test


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_fisher_matches_scipy(alternative):
    ref = sps.fisher_exact([[7, 23], [1, 29]], alternative=alternative).pvalue
    assert stats.fisher_exact(7, 30, 1, 30, alternative) == pytest.approx(ref, rel=1e-12)


def test_proportion_test_uses_fisher_for_small_cells_and_z_otherwise():
    small = stats.proportion_test(4, 40, 0, 40)  # expected successes 2 < 5
    assert small.test == "fisher"
    assert small.p_greater == pytest.approx(
        sps.fisher_exact([[4, 36], [0, 40]], alternative="greater").pvalue
    )
    assert small.p_less == pytest.approx(
        sps.fisher_exact([[4, 36], [0, 40]], alternative="less").pvalue
    )
    large = stats.proportion_test(150, 500, 100, 500)
    assert large.test == "z"
    z, p = stats.two_proportion_z(150, 500, 100, 500, "greater")
    assert large.p_greater == pytest.approx(float(p)) and large.statistic == pytest.approx(float(z))
    assert large.p_greater < 0.001 < 0.999 < large.p_less


# --------------------------------------------------------------------------- CMH

# R's UCBAdmissions: admitted / applied per department, men (group 1) and women (group 2).
UCB_MEN = [(512, 825), (353, 560), (120, 325), (138, 417), (53, 191), (22, 373)]
UCB_WOMEN = [(89, 108), (17, 25), (202, 593), (131, 375), (94, 393), (24, 341)]


def _ucb():
    x1, n1 = zip(*UCB_MEN, strict=True)
    x2, n2 = zip(*UCB_WOMEN, strict=True)
    return x1, n1, x2, n2


def test_cmh_matches_r_mantelhaen_test_on_ucb_admissions():
    # R: mantelhaen.test(UCBAdmissions) -> X-squared = 1.4269, p-value = 0.2323,
    # common odds ratio 0.9046968; with correct = FALSE: X-squared = 1.5246, p-value = 0.2169.
    corrected = stats.cmh_test(*_ucb(), continuity=True)
    assert corrected.statistic == pytest.approx(1.4269, abs=1e-4)
    assert corrected.p_two_sided == pytest.approx(0.2323, abs=1e-4)
    assert corrected.odds_ratio == pytest.approx(0.9046968, abs=1e-7)
    plain = stats.cmh_test(*_ucb(), continuity=False)
    assert plain.statistic == pytest.approx(1.5246, abs=1e-4)
    assert plain.p_two_sided == pytest.approx(0.2169, abs=1e-4)
    # Men are admitted slightly less often within departments: "less" is the likelier side.
    assert corrected.p_less < 0.5 < corrected.p_greater
    assert corrected.informative_strata == 6


def test_cmh_with_one_stratum_is_pearson_scaled_by_n_minus_one_over_n():
    x1, n1, x2, n2 = 40, 200, 25, 210
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    chi2 = sps.chi2_contingency(table, correction=False).statistic
    total = n1 + n2
    result = stats.cmh_test([x1], [n1], [x2], [n2], continuity=False)
    assert result.statistic == pytest.approx(chi2 * (total - 1) / total, rel=1e-10)
    # and the Mantel-Haenszel risk difference is the plain difference, Sato's variance Wald's
    p1, p2 = x1 / n1, x2 / n2
    assert result.risk_difference == pytest.approx(p1 - p2)
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    assert result.rd_high - result.rd_low == pytest.approx(2 * 1.959964 * se, rel=1e-5)


def test_cmh_is_blind_to_a_shift_of_traffic_between_strata():
    # Same rates in each stratum; group 1 puts 90% of its traffic on the bad stratum.
    x1, n1 = [270, 10], [900, 100]
    x2, n2 = [30, 90], [100, 900]
    naive = stats.proportion_test(sum(x1), sum(n1), sum(x2), sum(n2))
    assert naive.p_greater < 1e-10  # the raw comparison sees a huge "regression"
    adjusted = stats.cmh_test(x1, n1, x2, n2)
    assert adjusted.risk_difference == pytest.approx(0.0, abs=1e-12)
    assert adjusted.p_greater > 0.4 and adjusted.p_less > 0.4


def test_cmh_drops_strata_without_both_groups_and_handles_no_variation():
    result = stats.cmh_test([5, 3], [50, 10], [4, 0], [50, 0])
    assert result.informative_strata == 1
    empty = stats.cmh_test([0, 0], [30, 40], [0, 0], [30, 40])
    assert math.isnan(empty.p_greater) and empty.risk_difference == 0.0


def test_sato_interval_covers_the_common_risk_difference():
    rng = np.random.default_rng(7)
    base = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.15, 0.25, 0.35])
    n1 = rng.integers(20, 200, 8)
    n2 = rng.integers(20, 200, 8)
    covered = 0
    for _ in range(400):
        x1 = rng.binomial(n1, base + 0.04)
        x2 = rng.binomial(n2, base)
        r = stats.cmh_test(x1, n1, x2, n2)
        covered += r.rd_low <= 0.04 <= r.rd_high
    assert 0.92 <= covered / 400 <= 0.98


# --------------------------------------------------------------------------- BH


def test_benjamini_hochberg_matches_scipy_and_skips_nan():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=40) ** 3
    q = stats.benjamini_hochberg(p)
    assert np.allclose(q, sps.false_discovery_control(p, method="bh"))
    with_nan = np.array([0.01, np.nan, 0.04, 0.03, np.nan])
    q2 = stats.benjamini_hochberg(with_nan)
    assert np.isnan(q2[1]) and np.isnan(q2[4])
    assert np.allclose(q2[[0, 2, 3]], [0.03, 0.04, 0.04])  # m = 3, not 5
    assert np.isnan(stats.benjamini_hochberg([np.nan])).all()


# --------------------------------------------------------------------------- quantiles


def test_exact_bootstrap_law_of_the_quantile_matches_resampling():
    rng = np.random.default_rng(11)
    sample = np.sort(rng.lognormal(7, 0.5, 25))
    pmf = stats.quantile_bootstrap_pmf(sample, 0.95)
    k = math.ceil(0.95 * len(sample))
    draws = np.sort(rng.choice(sample, size=(40000, len(sample))), axis=1)[:, k - 1]
    empirical = np.array([(draws == v).mean() for v in sample])
    assert pmf.sum() == pytest.approx(1.0)
    assert np.abs(pmf - empirical).sum() / 2 < 0.02  # total variation distance


def test_bootstrap_interval_is_seeded_and_covers_the_true_difference():
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(7, 0.5, 300), rng.lognormal(7, 0.5, 300)
    assert stats.bootstrap_quantile_diff_interval(a, b, seed=1) == (
        stats.bootstrap_quantile_diff_interval(a, b, seed=1)
    )
    true_diff = math.exp(7 + 0.5 * sps.norm.ppf(0.95)) * 0.3  # p95 of 1.3x minus p95 of 1x
    covered = 0
    for i in range(150):
        r = np.random.default_rng(100 + i)
        a = 1.3 * r.lognormal(7, 0.5, 400)
        b = r.lognormal(7, 0.5, 400)
        low, high = stats.bootstrap_quantile_diff_interval(a, b, resamples=2000, seed=i)
        covered += low <= true_diff <= high
    assert covered / 150 >= 0.88


def test_quantile_exceedance_test_is_calibrated_and_detects_a_slower_tail():
    rng = np.random.default_rng(2)
    null_p = [
        stats.quantile_exceedance_test(
            rng.lognormal(7, 0.5, 300), rng.lognormal(7, 0.5, 300)
        ).test.p_greater
        for _ in range(600)
    ]
    assert np.mean(np.array(null_p) < 0.05) <= 0.07
    a, b = 1.4 * rng.lognormal(7, 0.5, 800), rng.lognormal(7, 0.5, 800)
    slower = stats.quantile_exceedance_test(a, b)
    assert slower.threshold == pytest.approx(np.quantile(np.concatenate([a, b]), 0.95))
    assert slower.x1 == (a > slower.threshold).sum() and slower.x2 == (b > slower.threshold).sum()
    assert slower.test.p_greater < 1e-4 and slower.x1 > 2 * slower.x2
