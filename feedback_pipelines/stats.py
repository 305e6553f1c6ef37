"""Statistics for honest version comparisons: intervals, tests, mix adjustment, FDR control.

Pure numpy/scipy, no Dagster, so every formula can be checked against a reference. Where
`scipy.stats` has the procedure (Fisher's exact test, the normal and binomial laws,
Benjamini–Hochberg) we call it; what it lacks (a vectorized Wilson interval, Newcombe's interval
for a difference, Cochran–Mantel–Haenszel with a continuity correction, the Mantel–Haenszel risk
difference with Sato's variance, a test and an interval for a difference of high quantiles) is
written out here with its formula.

Conventions. "1" is the candidate and "2" the baseline throughout; a *success* is the bad outcome
being counted (a negative event, a correction, an abandoned trace, a trace above a latency
threshold). Tests are one-sided so that a regression ("the candidate is worse") and an
improvement ("the candidate is better") are two separate questions, each with its own p-value:
`p_greater` answers "is rate 1 above rate 2?" and `p_less` the mirror question.

Formulas (z is the standard normal quantile for the confidence, 1.96 for 95%):

* Wilson score interval for x successes in n (Wilson 1927)::

      centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)

* Newcombe's hybrid score interval for p1 - p2 (Newcombe 1998, method 10), with (l_i, u_i)
  the Wilson intervals::

      low = d - sqrt((p1-l1)² + (u2-p2)²),  high = d + sqrt((u1-p1)² + (p2-l2)²)

* Two-proportion z test with the pooled variance (the score test; z² equals Pearson's χ²
  without Yates' correction)::

      p̂ = (x1+x2)/(n1+n2),  z = (p1 - p2) / sqrt(p̂(1-p̂)(1/n1 + 1/n2))

* Fisher's exact test (hypergeometric, conditional on the margins) from `scipy.stats`, used when
  an expected cell count is below 5 (Cochran's rule), where the normal approximation fails.

* Cochran–Mantel–Haenszel over K strata of 2×2 tables (a_k = x1_k successes among n1_k,
  c_k = x2_k among n2_k, m_k = a_k + c_k, N_k = n1_k + n2_k)::

      E_k = n1_k·m_k/N_k,  V_k = n1_k·n2_k·m_k·(N_k-m_k) / (N_k²(N_k-1))
      Δ = Σ(a_k - E_k),  χ²_MH = (|Δ| - ½)² / ΣV_k        (as R's mantelhaen.test, correct=TRUE)
      one-sided: p_greater = 1 - Φ((Δ - ½)/sqrt(ΣV)),  p_less = Φ((Δ + ½)/sqrt(ΣV))

  It compares the groups *within* each stratum, so a shift of traffic between strata (topics)
  can neither hide nor fake a difference.

* Mantel–Haenszel risk difference with Sato's (1989) variance, consistent for both many small
  strata and few large ones (w_k = n1_k·n2_k/N_k)::

      RD = Σ w_k (p1_k - p2_k) / Σ w_k
      Var = (RD·ΣP_k + ΣQ_k) / (Σw_k)²
      P_k = (n1_k²·c_k - n2_k²·a_k + n1_k·n2_k·(n2_k - n1_k)/2) / N_k²
      Q_k = (a_k·(n2_k - c_k) + c_k·(n1_k - a_k)) / (2 N_k)

* Benjamini–Hochberg (1995) q-values (`scipy.stats.false_discovery_control`): for sorted
  p_(i) of m tests, q_(i) = min_{j≥i} m·p_(j)/j. Rejecting q < α keeps the expected share of
  false discoveries at or below α (for independent or positively dependent tests); when every
  hypothesis is null, that is also the chance of any false discovery.

* High quantile (p95) comparison. Test: the quantile analogue of Mood's median test — count the
  values above the pooled sample's quantile in each group and compare the two shares with the
  proportion test above (exact under the null by conditioning on the margins). Interval: a
  percentile bootstrap of q̂1 - q̂2 where each group's bootstrap law of its order statistic
  X*_(k), k = ceil(q·n), is exact (no resampling needed)::

      P(X*_(k) ≤ x_(j)) = P(Binomial(n, j/n) ≥ k)

  and only the difference of the two independent laws is sampled (seeded, deterministic).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from scipy import stats as sps

Alternative = Literal["two-sided", "greater", "less"]

# Below this expected count in any cell of a 2×2 table, the normal approximation is unsafe.
MIN_EXPECTED_FOR_Z = 5.0


@functools.lru_cache(maxsize=32)
def normal_quantile(confidence: float = 0.95) -> float:
    """Two-sided standard normal critical value, 1.959964 for 95%."""
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def _as_float_arrays(*values: object) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in values]


def wilson_interval(
    successes: object, n: object, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion, vectorized over arrays.

    Wilson rather than the textbook Wald interval because it stays inside [0, 1], is not
    degenerate at 0 or n successes, and keeps close to its nominal coverage at the small counts
    a per-cluster, per-version cut produces. Where n is 0 the bounds are NaN.

    Args:
        successes: Count(s) of successes.
        n: Count(s) of trials, broadcastable with `successes`.
        confidence: Two-sided confidence level.

    Returns:
        (low, high) arrays (0-d for scalar input).
    """
    x, n_ = _as_float_arrays(successes, n)
    z = normal_quantile(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n_
        denom = 1.0 + z * z / n_
        centre = (p + z * z / (2.0 * n_)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n_ + z * z / (4.0 * n_ * n_)) / denom
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    bad = ~(n_ > 0)
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def newcombe_interval(
    x1: object, n1: object, x2: object, n2: object, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval for the difference of two independent proportions p1 - p2 (Newcombe, method 10).

    It combines the two Wilson intervals, so it inherits their good behaviour at small counts
    and at 0% or 100% — the cases where the Wald interval for a difference collapses to a point.

    Returns:
        (low, high) arrays; NaN where either n is 0.
    """
    x1_, n1_, x2_, n2_ = _as_float_arrays(x1, n1, x2, n2)
    l1, u1 = wilson_interval(x1_, n1_, confidence)
    l2, u2 = wilson_interval(x2_, n2_, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1_ / n1_, x2_ / n2_
        d = p1 - p2
        low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def _tails(z: np.ndarray) -> dict[str, np.ndarray]:
    greater = special.ndtr(-z)
    less = special.ndtr(z)
    return {
        "greater": greater,
        "less": less,
        "two-sided": np.minimum(1.0, 2.0 * np.minimum(greater, less)),
    }


def two_proportion_z(
    x1: object, n1: object, x2: object, n2: object, alternative: Alternative = "two-sided"
) -> tuple[np.ndarray, np.ndarray]:
    """Two-proportion z test (pooled variance), vectorized.

    Where the pooled rate is 0 or 1 the groups cannot differ: z is 0 and p is 1 (two-sided and
    greater/less alike get no evidence). Where either n is 0, both are NaN.

    Returns:
        (z, p) arrays.
    """
    x1_, n1_, x2_, n2_ = _as_float_arrays(x1, n1, x2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1_ + x2_) / (n1_ + n2_)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1_ + 1.0 / n2_))
        z = np.where(se > 0, (x1_ / n1_ - x2_ / n2_) / se, 0.0)
    p = _tails(z)[alternative]
    p = np.where(se > 0, p, 1.0)
    empty = ~((n1_ > 0) & (n2_ > 0))
    return np.where(empty, np.nan, z), np.where(empty, np.nan, p)


def fisher_exact(
    x1: int, n1: int, x2: int, n2: int, alternative: Alternative = "two-sided"
) -> float:
    """Fisher's exact test on the 2×2 table [[x1, n1-x1], [x2, n2-x2]] (scipy.stats).

    `greater` tests whether group 1 has the higher rate (odds ratio > 1).
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan
    table = [[int(x1), int(n1 - x1)], [int(x2), int(n2 - x2)]]
    return float(sps.fisher_exact(table, alternative=alternative).pvalue)


def min_expected_count(x1: object, n1: object, x2: object, n2: object) -> np.ndarray:
    """Smallest expected cell count of the 2×2 table under independence (vectorized)."""
    x1_, n1_, x2_, n2_ = _as_float_arrays(x1, n1, x2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = n1_ + n2_
        succ = x1_ + x2_
        fail = total - succ
        return np.minimum(n1_, n2_) * np.minimum(succ, fail) / total


@dataclass(frozen=True)
class ProportionTest:
    """One-sided p-values of a two-group proportion comparison and the test that gave them."""

    test: str  # "z" or "fisher"
    p_greater: float
    p_less: float
    statistic: float  # z for the z test, the odds ratio for Fisher


def proportion_test(
    x1: int, n1: int, x2: int, n2: int, min_expected: float = MIN_EXPECTED_FOR_Z
) -> ProportionTest:
    """Compare two proportions with the test their counts call for.

    Fisher's exact test when any expected cell count is below `min_expected` (the normal
    approximation is then unreliable, mostly anti-conservative at rare outcomes); otherwise the
    pooled two-proportion z test, which is the usual large-sample score test.
    """
    if n1 <= 0 or n2 <= 0:
        return ProportionTest("none", math.nan, math.nan, math.nan)
    if float(min_expected_count(x1, n1, x2, n2)) < min_expected:
        table = [[int(x1), int(n1 - x1)], [int(x2), int(n2 - x2)]]
        greater = sps.fisher_exact(table, alternative="greater")
        less = sps.fisher_exact(table, alternative="less")
        return ProportionTest(
            "fisher", float(greater.pvalue), float(less.pvalue), float(greater.statistic)
        )
    z, p_greater = two_proportion_z(x1, n1, x2, n2, alternative="greater")
    return ProportionTest("z", float(p_greater), float(special.ndtr(z)), float(z))


@dataclass(frozen=True)
class CMHResult:
    """Cochran–Mantel–Haenszel test and Mantel–Haenszel effect sizes over K strata."""

    statistic: float  # χ²_MH with continuity correction (1 df)
    p_two_sided: float
    p_greater: float
    p_less: float
    odds_ratio: float  # Mantel–Haenszel common odds ratio
    risk_difference: float  # Mantel–Haenszel weighted p1 - p2
    rd_low: float  # Sato 95% interval of the risk difference
    rd_high: float
    rate1: float  # Σ w_k p1_k / Σ w_k: group 1's rate on the common (MH-weighted) mix
    rate2: float
    informative_strata: int  # strata with both groups present and some variation


def cmh_test(
    x1: object,
    n1: object,
    x2: object,
    n2: object,
    continuity: bool = True,
    confidence: float = 0.95,
) -> CMHResult:
    """Cochran–Mantel–Haenszel test for K 2×2 tables, with Mantel–Haenszel effect sizes.

    Strata where a group is absent carry no information and are dropped; the statistic then
    only uses strata with both groups and at least one success and one failure. If none is
    left, every field is NaN.

    Args:
        x1: Successes of group 1 per stratum.
        n1: Size of group 1 per stratum.
        x2: Successes of group 2 per stratum.
        n2: Size of group 2 per stratum.
        continuity: Apply the ½ continuity correction (as R's `mantelhaen.test` by default).
        confidence: Level of the risk-difference interval.
    """
    a, n1_, c, n2_ = _as_float_arrays(x1, n1, x2, n2)
    both = (n1_ > 0) & (n2_ > 0)
    a, n1_, c, n2_ = a[both], n1_[both], c[both], n2_[both]
    N = n1_ + n2_
    m = a + c
    nan = math.nan
    # Risk difference and its Sato variance use every stratum with both groups.
    w = n1_ * n2_ / N
    if w.sum() <= 0:
        return CMHResult(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0)
    rate1 = float((w * a / n1_).sum() / w.sum())
    rate2 = float((w * c / n2_).sum() / w.sum())
    rd = rate1 - rate2
    p_k = (n1_**2 * c - n2_**2 * a + n1_ * n2_ * (n2_ - n1_) / 2.0) / N**2
    q_k = (a * (n2_ - c) + c * (n1_ - a)) / (2.0 * N)
    var_rd = (rd * p_k.sum() + q_k.sum()) / w.sum() ** 2
    z = normal_quantile(confidence)
    half = z * math.sqrt(max(var_rd, 0.0))
    # The test needs variation inside a stratum (N_k > 1, 0 < m_k < N_k).
    informative = (N > 1) & (m > 0) & (m < N)
    ai, n1i, n2i, Ni, mi = (
        a[informative],
        n1_[informative],
        n2_[informative],
        N[informative],
        m[informative],
    )
    var = (n1i * n2i * mi * (Ni - mi) / (Ni**2 * (Ni - 1.0))).sum()
    if var <= 0:
        return CMHResult(nan, nan, nan, nan, nan, rd, rd - half, rd + half, rate1, rate2, 0)
    delta = float((ai - n1i * mi / Ni).sum())
    cc = 0.5 if continuity else 0.0
    yates = cc if abs(delta) >= cc else 0.0
    statistic = (abs(delta) - yates) ** 2 / var
    sd = math.sqrt(var)
    p_greater = float(sps.norm.sf((delta - cc) / sd))
    p_less = float(sps.norm.cdf((delta + cc) / sd))
    num = (a * (n2_ - c) / N).sum()
    den = (c * (n1_ - a) / N).sum()
    odds = float(num / den) if den > 0 else (math.inf if num > 0 else nan)
    return CMHResult(
        statistic=float(statistic),
        p_two_sided=float(sps.chi2.sf(statistic, 1)),
        p_greater=p_greater,
        p_less=p_less,
        odds_ratio=odds,
        risk_difference=rd,
        rd_low=rd - half,
        rd_high=rd + half,
        rate1=rate1,
        rate2=rate2,
        informative_strata=int(informative.sum()),
    )


def benjamini_hochberg(p_values: object) -> np.ndarray:
    """Benjamini–Hochberg q-values; NaN p-values (tests not run) stay NaN and are not counted.

    Not counting untested cells is what keeps the correction honest in both directions: a
    cell too small to test cannot produce a discovery, so it must neither spend nor dilute the
    error budget (independent filtering, Bourgon et al. 2010).
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = sps.false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return q


def quantile_bootstrap_pmf(sorted_values: np.ndarray, q: float) -> np.ndarray:
    """Exact bootstrap law of the order statistic X*_(k), k = ceil(q·n), over the sorted sample.

    P(X*_(k) ≤ x_(j)) = P(Binomial(n, j/n) ≥ k): resampling n values with replacement, at least
    k of them fall at or below x_(j). Differencing over j gives the probability of each x_(j).
    """
    n = len(sorted_values)
    k = max(1, math.ceil(q * n))
    j = np.arange(0, n + 1)
    cdf = sps.binom.sf(k - 1, n, j / n)
    pmf = np.diff(cdf)
    pmf = np.clip(pmf, 0.0, None)
    return pmf / pmf.sum()


def bootstrap_quantile_diff_interval(
    values1: np.ndarray,
    values2: np.ndarray,
    q: float = 0.95,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of quantile(values1) - quantile(values2).

    Each group's bootstrap law of its sample quantile is exact (`quantile_bootstrap_pmf`), so
    only the difference of two independent draws is sampled: `resamples` draws cost O(n + B)
    instead of O(n·B) for a resampling bootstrap, which matters at one test per cluster.
    """
    v1 = np.sort(np.asarray(values1, dtype=float))
    v2 = np.sort(np.asarray(values2, dtype=float))
    if len(v1) == 0 or len(v2) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    d1 = rng.choice(v1, size=resamples, p=quantile_bootstrap_pmf(v1, q))
    d2 = rng.choice(v2, size=resamples, p=quantile_bootstrap_pmf(v2, q))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(d1 - d2, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class QuantileTest:
    """Exceedance test of a high quantile: counts above the pooled quantile, and their test."""

    threshold: float
    x1: int
    n1: int
    x2: int
    n2: int
    test: ProportionTest


def quantile_exceedance_test(
    values1: np.ndarray,
    values2: np.ndarray,
    q: float = 0.95,
    min_expected: float = MIN_EXPECTED_FOR_Z,
) -> QuantileTest:
    """Test whether group 1's q-quantile is above group 2's (Mood's median test at quantile q).

    Under the null both groups share one distribution, so the share of each group above the
    pooled sample's q-quantile is the same; comparing the two counts with Fisher's exact or the
    z test is a valid test aimed squarely at the tail (a rank test would mostly answer a
    question about the median).
    """
    v1 = np.asarray(values1, dtype=float)
    v2 = np.asarray(values2, dtype=float)
    if len(v1) == 0 or len(v2) == 0:
        return QuantileTest(
            math.nan, 0, len(v1), 0, len(v2), ProportionTest("none", math.nan, math.nan, math.nan)
        )
    threshold = float(np.quantile(np.concatenate([v1, v2]), q))
    x1 = int((v1 > threshold).sum())
    x2 = int((v2 > threshold).sum())
    test = proportion_test(x1, len(v1), x2, len(v2), min_expected)
    return QuantileTest(threshold, x1, len(v1), x2, len(v2), test)
