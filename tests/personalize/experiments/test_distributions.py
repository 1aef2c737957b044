"""The pure-Python special functions behind the experiment statistics, checked against scipy.stats.

Tolerances (worst case over the grids below, with margin):

* normal CDF / survival function: relative 1e-13;
* Student's t survival function: absolute 1e-10 everywhere, relative 1e-9 for df <= 1e6
  (above 1e7 degrees of freedom a first-order expansion around the normal takes over; its error
  is O(df⁻²));
* Student's t quantile: relative 1e-9;
* chi-square survival function: relative 1e-12.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats  # type: ignore[import-untyped]

from innkeeper.personalize.experiments import _distributions as dist

T_VALUES = [-100.0, -39.0, -8.0, -3.0, -1.96, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 1.96, 2.5, 4.0, 8.0, 20.0, 39.0, 41.0]
DEGREES_OF_FREEDOM = [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.3, 10.0, 30.0, 100.0, 1e3, 9_999.0, 1e4, 1e5, 1e6, 1e7, 1e8, 1e12]
PROBABILITIES = [1e-12, 1e-6, 0.001, 0.0125, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.999, 1 - 1e-6]


def relative_error(got: float, expected: float) -> float:
    return abs(got - expected) / abs(expected) if expected else abs(got)


@pytest.mark.parametrize("x", [-38.0, -10.0, -5.0, -1.0, -1e-8, 0.0, 0.3, 1.0, 1.959963984540054, 5.0, 10.0, 38.0])
def test_normal(x: float) -> None:
    assert relative_error(dist.norm_cdf(x), scipy.stats.norm.cdf(x)) < 1e-13
    assert relative_error(dist.norm_sf(x), scipy.stats.norm.sf(x)) < 1e-13
    assert relative_error(dist.norm_pdf(x), scipy.stats.norm.pdf(x)) < 1e-13


@pytest.mark.parametrize("p", PROBABILITIES)
def test_normal_quantile(p: float) -> None:
    assert relative_error(dist.norm_ppf(p), scipy.stats.norm.ppf(p)) < 1e-12


@pytest.mark.parametrize("df", DEGREES_OF_FREEDOM)
def test_t_survival_function(df: float) -> None:
    for t in T_VALUES:
        expected = float(scipy.stats.t.sf(t, df))
        got = dist.t_sf(t, df)
        assert abs(got - expected) < 1e-10, (t, df)
        assert abs(dist.t_cdf(t, df) - scipy.stats.t.cdf(t, df)) < 1e-10, (t, df)
        two_sided = 2 * float(scipy.stats.t.sf(abs(t), df))
        assert abs(dist.t_two_sided_p(t, df) - two_sided) < 2e-10, (t, df)
        if df <= 1e6 and expected > 1e-300:
            assert relative_error(got, expected) < 1e-9, (t, df)


def test_t_with_infinite_degrees_of_freedom_is_normal() -> None:
    for t in T_VALUES:
        assert dist.t_sf(t, math.inf) == dist.norm_sf(t)


@pytest.mark.parametrize("df", DEGREES_OF_FREEDOM)
def test_t_quantile(df: float) -> None:
    for p in PROBABILITIES:
        expected = float(scipy.stats.t.ppf(p, df))
        assert relative_error(dist.t_ppf(p, df), expected) < 1e-9, (p, df)


def test_t_quantile_rejects_probabilities_outside_the_open_interval() -> None:
    for p in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="0 < p < 1"):
            dist.t_ppf(p, 10.0)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10, 50, 100, 1000])
def test_chi_square_survival_function(df: int) -> None:
    for x in [0.0, 1e-6, 0.01, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0, 1_000.0, 5_000.0]:
        expected = float(scipy.stats.chi2.sf(x, df))
        got = dist.chi2_sf(x, df)
        if expected > 1e-300:
            assert relative_error(got, expected) < 1e-12, (x, df)
        else:
            assert got < 1e-290


def test_incomplete_beta_and_gamma() -> None:
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 3.0, 0.9), (50.0, 0.5, 0.99), (0.5, 5e4, 1e-5), (10.0, 10.0, 0.5)]:
        assert relative_error(dist.betainc(a, b, x), scipy.special.betainc(a, b, x)) < 1e-12
    assert dist.betainc(2.0, 3.0, 0.0) == 0.0
    assert dist.betainc(2.0, 3.0, 1.0) == 1.0
    for a, x in [(0.5, 0.1), (1.0, 1.0), (3.0, 10.0), (100.0, 90.0), (100.0, 130.0)]:
        assert relative_error(dist.gammaincc(a, x), scipy.special.gammaincc(a, x)) < 1e-12
    assert dist.gammaincc(2.0, 0.0) == 1.0
    assert dist.gammaincc(2.0, math.inf) == 0.0
