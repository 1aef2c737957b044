"""Experiment statistics (personalize.md §7.7) against scipy.stats and GrowthBook's gbstats.

Tolerances, stated once:

* two-proportion z-test: z relative 1e-12; p-value absolute 1e-12 (and relative 1e-9 above 1e-300);
  CI bounds absolute 1e-12 — scipy computes the same formulas, so only rounding differs;
* Welch's t-test vs ``scipy.stats.ttest_ind_from_stats(equal_var=False)``: t relative 1e-10,
  p-value absolute 1e-10; CI bounds (with ``scipy.stats.t.ppf``) relative 1e-9 of the half-width;
* Bayesian vs ``gbstats.bayesian.tests.EffectBayesianABTest`` (0.8.0, default config):
  chance to win absolute 1e-12, expected uplift / stddev / credible interval relative 1e-12,
  risks absolute 1e-9 (gbstats goes through scipy's truncated normal, we use the closed form);
* SRM vs ``scipy.stats.chisquare``: statistic relative 1e-12, p-value absolute 1e-12;
* minimum sample size: equal to the ceiling computed with ``scipy.stats.norm.ppf``.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import random
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
import scipy.stats  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from innkeeper.personalize.experiments.stats import (
    BayesianResult,
    Comparison,
    Proportion,
    SrmResult,
    Summary,
    Verdict,
    chance_to_beat_control,
    compare_binary,
    compare_continuous,
    minimum_sample_size,
    srm_check,
    verdict,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pandas/pydantic may warn on import; not our concern here
    from gbstats.bayesian.tests import (  # type: ignore[import-untyped]
        EffectBayesianABTest,
        EffectBayesianConfig,
    )
    from gbstats.models.statistics import (  # type: ignore[import-untyped]
        ProportionStatistic,
        SampleMeanStatistic,
    )

PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def close(got: float | None, expected: float, *, rel: float = 0.0, abs_: float = 0.0) -> bool:
    assert got is not None
    return abs(got - expected) <= max(abs_, rel * abs(expected))


def assert_no_nan(result: Any) -> None:
    """Every float field is finite or None."""
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if isinstance(value, float):
            assert math.isfinite(value), (field.name, result)


# --- minimum sample size -------------------------------------------------------------------------


def test_minimum_sample_size_defaults_to_21106() -> None:
    assert minimum_sample_size() == 21_106
    assert minimum_sample_size(base_rate=0.02, mdd=0.2, confidence=0.95, power=0.8) == 21_106


def test_rounded_z_values_would_not_give_21106() -> None:
    """Why exact quantiles: the contract's "z = 1.960, 0.842" are display roundings (they give 21,112)."""
    p1, p2 = 0.02, 0.024
    rounded = (1.960 + 0.842) ** 2 * (p1 * (1 - p1) + p2 * (1 - p2)) / (p2 - p1) ** 2
    assert math.ceil(rounded) == 21_112


@pytest.mark.parametrize(
    ("base_rate", "mdd", "confidence", "power"),
    [
        (p, m, c, w)
        for p, m, c, w in itertools.product(
            [0.005, 0.02, 0.1, 0.3, 0.5], [0.01, 0.05, 0.2, 0.5], [0.8, 0.9, 0.95, 0.99], [0.8, 0.9]
        )
    ],
)
def test_minimum_sample_size_matches_scipy(base_rate: float, mdd: float, confidence: float, power: float) -> None:
    p1, p2 = base_rate, base_rate * (1 + mdd)
    z = scipy.stats.norm.ppf(1 - (1 - confidence) / 2) + scipy.stats.norm.ppf(power)
    expected = math.ceil(z**2 * (p1 * (1 - p1) + p2 * (1 - p2)) / (p2 - p1) ** 2)
    assert minimum_sample_size(base_rate, mdd, confidence, power) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_rate": 0.0},
        {"base_rate": 1.0},
        {"mdd": 0.0},
        {"base_rate": 0.5, "mdd": 1.5},
        {"confidence": 1.0},
        {"power": 0.0},
    ],
)
def test_minimum_sample_size_rejects_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        minimum_sample_size(**kwargs)


# --- two-proportion z-test -----------------------------------------------------------------------

BINARY_GRID = [
    (1_000, 20, 1_000, 35),
    (21_106, 422, 21_106, 507),
    (21_106, 422, 20_980, 430),
    (50, 1, 60, 9),
    (10, 0, 10, 3),
    (10, 10, 12, 4),
    (1_000_000, 30_000, 1_000_000, 30_600),
    (5_000, 2_500, 4_800, 2_350),
    (100, 0, 100, 100),
    (3, 1, 2, 2),
]


@pytest.mark.parametrize(("n_c", "x_c", "n_v", "x_v"), BINARY_GRID)
@pytest.mark.parametrize(("alpha", "k"), [(0.05, 1), (0.05, 3), (0.1, 2), (0.01, 1)])
def test_compare_binary_matches_scipy(n_c: int, x_c: int, n_v: int, x_v: int, alpha: float, k: int) -> None:
    result = compare_binary(n_c, x_c, n_v, x_v, alpha=alpha, comparisons=k)
    p_c, p_v = x_c / n_c, x_v / n_v
    pooled = (x_c + x_v) / (n_c + n_v)
    z = (p_v - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_v))
    p_value = 2 * scipy.stats.norm.sf(abs(z))
    margin = scipy.stats.norm.ppf(1 - alpha / k / 2) * math.sqrt(p_c * (1 - p_c) / n_c + p_v * (1 - p_v) / n_v)
    assert close(result.statistic, z, rel=1e-12)
    assert close(result.p_value, p_value, abs_=1e-12)
    if p_value > 1e-300:
        assert close(result.p_value, p_value, rel=1e-9)
    assert close(result.ci_low, p_v - p_c - margin, abs_=1e-12)
    assert close(result.ci_high, p_v - p_c + margin, abs_=1e-12)
    assert result.confidence == pytest.approx(1 - p_value, abs=1e-12)
    assert result.significant is bool(p_value < alpha / k)
    assert result.rate_control == p_c
    assert result.rate_variant == p_v
    assert result.difference == pytest.approx(p_v - p_c, abs=1e-15)
    assert result.uplift == (None if p_c == 0 else pytest.approx((p_v - p_c) / p_c, rel=1e-12))
    assert (result.units_control, result.units_variant) == (n_c, n_v)


@PROPERTIES
@given(
    n_c=st.integers(min_value=1, max_value=10**7),
    n_v=st.integers(min_value=1, max_value=10**7),
    c_share=st.floats(min_value=0.0, max_value=1.0),
    v_share=st.floats(min_value=0.0, max_value=1.0),
)
def test_compare_binary_equals_the_uncorrected_chi_square_test(
    n_c: int, n_v: int, c_share: float, v_share: float
) -> None:
    """Independent route: the pooled z-test is the 2×2 chi-square test without continuity correction (χ² = z²)."""
    x_c, x_v = round(n_c * c_share), round(n_v * v_share)
    result = compare_binary(n_c, x_c, n_v, x_v)
    assert_no_nan(result)
    total = x_c + x_v
    if total in (0, n_c + n_v):
        assert result.p_value == 1.0
        return
    chi2, p_value, _, _ = scipy.stats.chi2_contingency([[x_c, n_c - x_c], [x_v, n_v - x_v]], correction=False)
    assert close(result.p_value, p_value, abs_=1e-9)
    assert result.statistic is not None
    assert close(result.statistic**2, chi2, rel=1e-8, abs_=1e-12)


def test_compare_binary_edge_cases() -> None:
    empty = compare_binary(0, 0, 100, 5)
    assert (empty.rate_control, empty.rate_variant, empty.p_value, empty.uplift) == (None, 0.05, None, None)
    assert not empty.significant
    both_empty = compare_binary(0, 0, 0, 0)
    assert both_empty.rate_control is None and both_empty.rate_variant is None
    zero = compare_binary(100, 0, 100, 0)
    assert (zero.p_value, zero.confidence, zero.uplift, zero.difference, zero.statistic) == (1.0, 0.0, None, 0.0, 0.0)
    assert (zero.ci_low, zero.ci_high) == (0.0, 0.0)
    full = compare_binary(100, 100, 50, 50)
    assert (full.p_value, full.uplift, full.difference) == (1.0, 0.0, 0.0)
    identical = compare_binary(1_000, 100, 1_000, 100)
    assert (identical.p_value, identical.uplift, identical.statistic) == (1.0, 0.0, 0.0)
    assert identical.ci_low is not None and identical.ci_high is not None
    assert identical.ci_low < 0 < identical.ci_high
    extreme = compare_binary(10_000, 0, 10_000, 10_000)
    assert extreme.p_value == 0.0 and extreme.significant and extreme.uplift is None
    for result in (empty, both_empty, zero, full, identical, extreme):
        assert_no_nan(result)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((10, 11, 10, 1), {}, "control conversions \\(11\\) exceed control units \\(10\\)"),
        ((10, 1, -1, 0), {}, "variant units must be a non-negative integer"),
        ((10, 1, 10, 1.5), {}, "variant conversions must be a non-negative integer"),
        ((10, 1, 10, 1), {"alpha": 0.0}, "alpha must be between 0 and 1"),
        ((10, 1, 10, 1), {"comparisons": 0}, "comparisons must be a positive integer"),
    ],
)
def test_compare_binary_rejects_malformed_input(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_binary(*args, **kwargs)


# --- Welch's t-test ------------------------------------------------------------------------------


def summary_of(values: Sequence[float]) -> Summary:
    return Summary(n=len(values), total=math.fsum(values), total_squares=math.fsum(v * v for v in values))


def mean_sd(summary: Summary) -> tuple[float, float, int]:
    mean = summary.total / summary.n
    return mean, math.sqrt((summary.total_squares - summary.total * mean) / (summary.n - 1)), summary.n


CONTINUOUS_GRID = [
    (Summary(100, 523.0, 4_012.5), Summary(120, 700.0, 5_200.0)),
    (Summary(2, 3.0, 5.0), Summary(2, 7.0, 25.0)),
    (Summary(5_000, 12_345.0, 98_765.0), Summary(5_100, 13_000.0, 101_000.0)),
    (Summary(30, -15.0, 40.0), Summary(45, 10.0, 90.0)),
    (Summary(10, 100.0, 1_000.0), Summary(10, 120.0, 1_500.0)),  # control has zero variance
    (Summary(1_000_000, 2.0e6, 9.0e6), Summary(1_000_000, 2.001e6, 9.01e6)),
    (Summary(3, 3.0, 3.0000001), Summary(300, 420.0, 900.0)),
]


@pytest.mark.parametrize(("control", "variant"), CONTINUOUS_GRID)
@pytest.mark.parametrize(("alpha", "k"), [(0.05, 1), (0.05, 3), (0.2, 1)])
def test_compare_continuous_matches_scipy(control: Summary, variant: Summary, alpha: float, k: int) -> None:
    result = compare_continuous(control, variant, alpha=alpha, comparisons=k)
    m_c, s_c, n_c = mean_sd(control)
    m_v, s_v, n_v = mean_sd(variant)
    expected = scipy.stats.ttest_ind_from_stats(m_v, s_v, n_v, m_c, s_c, n_c, equal_var=False)
    assert close(result.statistic, expected.statistic, rel=1e-10)
    assert close(result.p_value, expected.pvalue, abs_=1e-10)
    var_c, var_v = s_c**2 / n_c, s_v**2 / n_v
    df = (var_c + var_v) ** 2 / (var_c**2 / (n_c - 1) + var_v**2 / (n_v - 1))
    assert close(result.degrees_of_freedom, df, rel=1e-10)
    half_width = scipy.stats.t.ppf(1 - alpha / k / 2, df) * math.sqrt(var_c + var_v)
    assert close(result.ci_low, m_v - m_c - half_width, abs_=1e-9 * half_width)
    assert close(result.ci_high, m_v - m_c + half_width, abs_=1e-9 * half_width)
    assert result.significant is bool(expected.pvalue < alpha / k)
    assert result.uplift == pytest.approx((m_v - m_c) / m_c, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_compare_continuous_matches_scipy_on_raw_data(seed: int) -> None:
    """From raw samples: our summaries (n, Σx, Σx²) give scipy's ttest_ind(equal_var=False)."""
    rng = random.Random(seed)
    control = [rng.lognormvariate(3, 1) if rng.random() < 0.1 else 0.0 for _ in range(rng.randint(20, 3_000))]
    variant = [rng.lognormvariate(3.1, 1) if rng.random() < 0.12 else 0.0 for _ in range(rng.randint(20, 3_000))]
    result = compare_continuous(summary_of(control), summary_of(variant))
    expected = scipy.stats.ttest_ind(variant, control, equal_var=False)
    assert close(result.statistic, expected.statistic, rel=1e-9)
    assert close(result.p_value, expected.pvalue, abs_=1e-10)
    low, high = expected.confidence_interval(0.95)
    assert close(result.ci_low, low, rel=1e-9, abs_=1e-12)
    assert close(result.ci_high, high, rel=1e-9, abs_=1e-12)


def test_compare_continuous_edge_cases() -> None:
    nothing = compare_continuous(Summary(0, 0.0, 0.0), Summary(0, 0.0, 0.0))
    assert (nothing.rate_control, nothing.rate_variant, nothing.p_value, nothing.difference) == (None, None, None, None)
    single = compare_continuous(Summary(1, 5.0, 25.0), Summary(10, 60.0, 400.0))
    assert (single.rate_control, single.rate_variant, single.difference) == (5.0, 6.0, 1.0)
    assert single.uplift == pytest.approx(0.2)
    assert single.p_value is None and single.ci_low is None and not single.significant
    identical = compare_continuous(Summary(10, 50.0, 250.0), Summary(20, 100.0, 500.0))  # all values 5
    assert (identical.p_value, identical.statistic, identical.uplift, identical.confidence) == (1.0, 0.0, 0.0, 0.0)
    assert (identical.ci_low, identical.ci_high) == (0.0, 0.0)
    constant_shift = compare_continuous(Summary(10, 50.0, 250.0), Summary(10, 60.0, 360.0))  # all 5 vs all 6
    assert (constant_shift.p_value, constant_shift.statistic, constant_shift.significant) == (0.0, None, True)
    zero_control = compare_continuous(Summary(10, 0.0, 0.0), Summary(10, 5.0, 10.0))
    assert zero_control.uplift is None and zero_control.p_value is not None
    same_data = compare_continuous(Summary(50, 123.0, 999.0), Summary(50, 123.0, 999.0))
    assert (same_data.p_value, same_data.uplift, same_data.difference) == (1.0, 0.0, 0.0)
    for result in (nothing, single, identical, constant_shift, zero_control, same_data):
        assert_no_nan(result)
    with pytest.raises(ValueError, match="finite"):
        compare_continuous(Summary(10, math.nan, 1.0), Summary(10, 1.0, 1.0))
    with pytest.raises(ValueError, match="total_squares must not be negative"):
        compare_continuous(Summary(10, 1.0, -1.0), Summary(10, 1.0, 1.0))


@PROPERTIES
@given(
    n_c=st.integers(min_value=0, max_value=10**6),
    n_v=st.integers(min_value=0, max_value=10**6),
    mean_c=st.floats(min_value=-1e6, max_value=1e6),
    mean_v=st.floats(min_value=-1e6, max_value=1e6),
    sd_c=st.floats(min_value=0.0, max_value=1e4),
    sd_v=st.floats(min_value=0.0, max_value=1e4),
)
def test_compare_continuous_never_returns_nan(
    n_c: int, n_v: int, mean_c: float, mean_v: float, sd_c: float, sd_v: float
) -> None:
    def summary(n: int, mean: float, sd: float) -> Summary:
        return Summary(n, n * mean, max(0.0, (n - 1) * sd * sd + n * mean * mean))

    result = compare_continuous(summary(n_c, mean_c, sd_c), summary(n_v, mean_v, sd_v))
    assert_no_nan(result)
    if result.p_value is not None:
        assert 0.0 <= result.p_value <= 1.0


# --- Bayesian: GrowthBook's EffectBayesianABTest -------------------------------------------------


def gbstats_result(control: Proportion | Summary, variant: Proportion | Summary, **config: Any) -> Any:
    def statistic(arm: Proportion | Summary) -> Any:
        if isinstance(arm, Proportion):
            return ProportionStatistic(n=arm.units, sum=arm.conversions)
        return SampleMeanStatistic(n=arm.n, sum=arm.total, sum_squares=arm.total_squares)

    test = EffectBayesianABTest(statistic(control), statistic(variant), EffectBayesianConfig(**config))
    return test.compute_result()


BAYESIAN_GRID: list[tuple[Proportion | Summary, Proportion | Summary]] = [
    (Proportion(1_000, 50), Proportion(1_000, 65)),
    (Proportion(21_106, 422), Proportion(21_106, 507)),
    (Proportion(21_106, 422), Proportion(20_000, 380)),
    (Proportion(100, 3), Proportion(120, 2)),
    (Proportion(50, 25), Proportion(50, 25)),
    (Proportion(1_000_000, 20_000), Proportion(1_000_000, 20_150)),
    (Proportion(300, 200), Proportion(310, 260)),
    (Proportion(200, 20), Proportion(200, 90)),  # chance to win ~1: far tail
    (Summary(100, 523.0, 4_012.5), Summary(120, 700.0, 5_200.0)),
    (Summary(5_000, 12_345.0, 98_765.0), Summary(5_100, 13_000.0, 101_000.0)),
    (Summary(30, -15.0, 40.0), Summary(45, 10.0, 90.0)),
    (Summary(2, 3.0, 5.0), Summary(2, 7.0, 25.0)),
    (Summary(40, 400.0, 4_100.0), Summary(40, 300.0, 2_400.0)),
]


@pytest.mark.parametrize(("control", "variant"), BAYESIAN_GRID)
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_chance_to_beat_control_matches_gbstats(
    control: Proportion | Summary, variant: Proportion | Summary, inverse: bool, alpha: float
) -> None:
    expected = gbstats_result(control, variant, inverse=inverse, alpha=alpha)
    assert expected.error_message is None
    result = chance_to_beat_control(control, variant, inverse=inverse, alpha=alpha)
    assert result.error is None
    assert close(result.chance_to_win, expected.chance_to_win, abs_=1e-12)
    assert close(result.expected, expected.expected, rel=1e-12, abs_=1e-15)
    assert close(result.stddev, expected.uplift.stddev, rel=1e-12)
    assert close(result.ci_low, expected.ci[0], rel=1e-12, abs_=1e-15)
    assert close(result.ci_high, expected.ci[1], rel=1e-12, abs_=1e-15)
    assert close(result.risk_control, expected.risk[0], abs_=1e-9)
    assert close(result.risk_variant, expected.risk[1], abs_=1e-9)


@pytest.mark.parametrize(
    ("control", "variant"),
    [
        (Proportion(0, 0), Proportion(100, 5)),
        (Proportion(100, 5), Proportion(0, 0)),
        (Proportion(100, 0), Proportion(100, 5)),
        (Proportion(100, 5), Proportion(100, 0)),
        (Proportion(100, 100), Proportion(100, 50)),
        (Proportion(100, 5), Proportion(100, 100)),
        (Summary(1, 5.0, 25.0), Summary(10, 50.0, 300.0)),
        (Summary(10, 0.0, 0.0), Summary(10, 50.0, 300.0)),
        (Summary(10, 50.0, 250.0), Summary(10, 50.0, 300.0)),
        (Summary(0, 0.0, 0.0), Summary(0, 0.0, 0.0)),
    ],
)
def test_chance_to_beat_control_is_uninformative_where_gbstats_is(
    control: Proportion | Summary, variant: Proportion | Summary
) -> None:
    expected = gbstats_result(control, variant)
    assert expected.error_message is not None
    assert expected.chance_to_win == 0.5
    result = chance_to_beat_control(control, variant)
    assert result == BayesianResult(0.5, None, None, None, None, None, None, error=result.error)
    assert result.error


def test_chance_to_beat_control_rejects_mixed_arms() -> None:
    with pytest.raises(ValueError, match="both be Proportion or both be Summary"):
        chance_to_beat_control(Proportion(10, 1), Summary(10, 1.0, 1.0))


@PROPERTIES
@given(
    n_c=st.integers(min_value=0, max_value=10**7),
    n_v=st.integers(min_value=0, max_value=10**7),
    c_share=st.floats(min_value=0.0, max_value=1.0),
    v_share=st.floats(min_value=0.0, max_value=1.0),
    inverse=st.booleans(),
)
def test_chance_to_beat_control_never_returns_nan(
    n_c: int, n_v: int, c_share: float, v_share: float, inverse: bool
) -> None:
    result = chance_to_beat_control(
        Proportion(n_c, round(n_c * c_share)), Proportion(n_v, round(n_v * v_share)), inverse=inverse
    )
    assert_no_nan(result)
    assert 0.0 <= result.chance_to_win <= 1.0
    if result.risk_control is not None and result.risk_variant is not None:
        assert result.risk_control >= 0.0 and result.risk_variant >= 0.0


# --- sample ratio mismatch -----------------------------------------------------------------------

SRM_GRID = [
    ([5_000, 5_100], [0.5, 0.5]),
    ([5_000, 5_400], [50, 50]),
    ([3_400, 3_300, 3_300], [34, 33, 33]),
    ([3_000, 3_300, 3_700], [34, 33, 33]),
    ([900, 100], [0.9, 0.1]),
    ([1, 0], [0.5, 0.5]),
    ([1_000, 250, 250, 260, 240], [40, 15, 15, 15, 15]),
    ([10**7, 10**7 + 20_000], [1, 1]),
]


@pytest.mark.parametrize(("observed", "weights"), SRM_GRID)
def test_srm_check_matches_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    result = srm_check(observed, weights)
    total, weight_total = sum(observed), sum(weights)
    expected = scipy.stats.chisquare(observed, [w / weight_total * total for w in weights])
    assert close(result.chi_square, expected.statistic, rel=1e-12, abs_=1e-12)
    assert close(result.p_value, expected.pvalue, abs_=1e-12)
    assert result.degrees_of_freedom == len(observed) - 1
    assert result.mismatch is bool(expected.pvalue < 0.001)


def test_srm_check_flags_a_real_mismatch() -> None:
    assert srm_check([5_000, 5_400], [50, 50]).mismatch
    assert not srm_check([5_000, 5_100], [50, 50]).mismatch
    assert srm_check([5_000, 5_100], [50, 50], threshold=0.5).mismatch


def test_srm_check_edge_cases() -> None:
    assert srm_check([0, 0], [50, 50]) == SrmResult(1.0, False, 0.0, 1)
    assert srm_check([10], [100]) == SrmResult(1.0, False, 0.0, 0)
    unexpected = srm_check([100, 5], [1, 0])
    assert (unexpected.p_value, unexpected.mismatch, unexpected.chi_square) == (0.0, True, None)
    ignored = srm_check([500, 520, 0], [1, 1, 0])
    expected = scipy.stats.chisquare([500, 520])
    assert close(ignored.p_value, expected.pvalue, abs_=1e-12)
    assert ignored.degrees_of_freedom == 1
    for observed, weights, message in [
        ([1, 2], [1.0], "observed has 2 arms but expected_weights has 1"),
        ([1, -2], [1.0, 1.0], "non-negative integer"),
        ([1, 2], [1.0, -1.0], "finite non-negative"),
        ([1, 2], [0.0, 0.0], "positive weight"),
    ]:
        with pytest.raises(ValueError, match=message):
            srm_check(observed, weights)


# --- verdict -------------------------------------------------------------------------------------

MINIMUM = minimum_sample_size()


def test_verdict_winner_inconclusive_leading() -> None:
    winner = compare_binary(MINIMUM, 422, MINIMUM, 530)
    assert winner.significant
    won = verdict({"b": winner}, minimum_sample_size=MINIMUM)
    assert (won.status, won.variant_ref) == ("WINNER", "b")
    assert "p = " in won.reason
    flat = verdict({"b": compare_binary(MINIMUM, 422, MINIMUM, 430)}, minimum_sample_size=MINIMUM)
    assert (flat.status, flat.variant_ref) == ("INCONCLUSIVE", None)
    early = compare_binary(1_000, 20, 1_000, 30)
    leading = verdict({"b": early}, minimum_sample_size=MINIMUM, control_ref="control")
    assert (leading.status, leading.variant_ref) == ("LEADING", "b")
    behind = verdict({"b": compare_binary(1_000, 30, 1_000, 20)}, minimum_sample_size=MINIMUM, control_ref="control")
    assert (behind.status, behind.variant_ref) == ("LEADING", "control")


def test_verdict_significant_in_the_wrong_direction_is_not_a_winner() -> None:
    worse = compare_binary(MINIMUM, 530, MINIMUM, 422)
    assert worse.significant
    assert verdict({"b": worse}, minimum_sample_size=MINIMUM).status == "INCONCLUSIVE"
    lower_is_better = verdict({"b": worse}, minimum_sample_size=MINIMUM, direction="DECREASE")
    assert (lower_is_better.status, lower_is_better.variant_ref) == ("WINNER", "b")


def test_verdict_applies_bonferroni_and_picks_the_best_variant() -> None:
    # p ≈ 0.034: significant alone, not at alpha/3.
    modest = compare_binary(MINIMUM, 422, MINIMUM, 485)
    assert modest.p_value is not None and 0.05 / 3 < modest.p_value < 0.05
    assert verdict({"b": modest}, minimum_sample_size=MINIMUM).status == "WINNER"
    three = {
        "b": modest,
        "c": compare_binary(MINIMUM, 422, MINIMUM, 425),
        "d": compare_binary(MINIMUM, 422, MINIMUM, 410),
    }
    assert verdict(three, minimum_sample_size=MINIMUM).status == "INCONCLUSIVE"
    strong = {**three, "d": compare_binary(MINIMUM, 422, MINIMUM, 540)}
    best = verdict(strong, minimum_sample_size=MINIMUM)
    assert (best.status, best.variant_ref) == ("WINNER", "d")


def test_verdict_needs_every_arm_at_the_minimum_sample() -> None:
    comparisons = {"b": compare_binary(MINIMUM, 422, MINIMUM, 600), "c": compare_binary(MINIMUM, 422, MINIMUM - 1, 430)}
    assert verdict(comparisons, minimum_sample_size=MINIMUM).status == "LEADING"


def test_verdict_insufficient_data() -> None:
    assert verdict({}, minimum_sample_size=MINIMUM).status == "INSUFFICIENT_DATA"
    assert verdict({"b": compare_binary(0, 0, 0, 0)}, minimum_sample_size=MINIMUM).status == "INSUFFICIENT_DATA"
    partial = {"b": compare_binary(0, 0, 10, 1), "c": compare_binary(0, 0, 10, 2)}
    assert verdict(partial, minimum_sample_size=MINIMUM) == Verdict(
        "INSUFFICIENT_DATA", None, "no variant can be compared with the control yet"
    )


def test_verdict_with_continuous_goals() -> None:
    control, variant = Summary(30_000, 60_000.0, 1_000_000.0), Summary(30_000, 66_000.0, 1_100_000.0)
    comparison: Comparison = compare_continuous(control, variant)
    assert verdict({"b": comparison}, minimum_sample_size=25_000).status == "WINNER"
    assert verdict({"b": comparison}, minimum_sample_size=40_000).status == "LEADING"


# --- A/A simulations -----------------------------------------------------------------------------


def binomial_sampler(n: int, p: float) -> Any:
    """Exact binomial draws by inverting the CDF: one uniform per draw."""
    cdf: list[float] = []
    running = 0.0
    for k in range(n + 1):
        log_pmf = (
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * math.log(p)
            + (n - k) * math.log1p(-p)
        )
        running += math.exp(log_pmf)
        cdf.append(running)

    def draw(rng: random.Random) -> int:
        return min(bisect.bisect_left(cdf, rng.random()), n)

    return draw


def test_binary_a_a_false_positive_rate_is_near_alpha() -> None:
    """2,000 A/A tests (1,000 units per arm, 10 % rate): share with p < 0.05 is 5 % ± 1.5 pp (3 sd)."""
    rng = random.Random(20_240_601)
    draw = binomial_sampler(1_000, 0.10)
    runs = 2_000
    positives = sum(compare_binary(1_000, draw(rng), 1_000, draw(rng)).significant for _ in range(runs))
    assert abs(positives / runs - 0.05) <= 0.015


def test_bonferroni_keeps_the_family_wise_rate_near_alpha() -> None:
    """A/A/A/A: with three variants and alpha/3 per comparison, any-false-positive rate stays ≲ 5 %."""
    rng = random.Random(7)
    draw = binomial_sampler(2_000, 0.05)
    runs = 2_000
    family_positives = 0
    for _ in range(runs):
        control = draw(rng)
        results = [compare_binary(2_000, control, 2_000, draw(rng), comparisons=3) for _ in range(3)]
        family_positives += any(r.significant for r in results)
    assert 0.025 <= family_positives / runs <= 0.065


def test_continuous_a_a_false_positive_rate_is_near_alpha() -> None:
    """2,000 Welch A/A tests on skewed revenue-like data (200 units per arm): 5 % ± 1.5 pp."""
    rng = random.Random(11)
    runs = 2_000

    def arm() -> Summary:
        return summary_of([rng.expovariate(1 / 40.0) for _ in range(200)])

    positives = sum(compare_continuous(arm(), arm()).significant for _ in range(runs))
    assert abs(positives / runs - 0.05) <= 0.015


def test_bayesian_chance_to_win_under_a_a() -> None:
    """Under A/A, chance to win is outside 2.5 %..97.5 % in ~5 % of 2,000 tests (± 1.5 pp).

    Only the two-sided rate is ~5 %: gbstats' delta-method variance of the relative uplift grows with
    the variant's mean, so the two tails are not symmetric (about 3 % above 95 % and 7 % below 5 %
    in a 50,000-run simulation of this setting).
    """
    rng = random.Random(3)
    draw = binomial_sampler(1_000, 0.10)
    runs = 2_000
    confident = 0
    for _ in range(runs):
        chance = chance_to_beat_control(Proportion(1_000, draw(rng)), Proportion(1_000, draw(rng))).chance_to_win
        confident += chance > 0.975 or chance < 0.025
    assert abs(confident / runs - 0.05) <= 0.015
