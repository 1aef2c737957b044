"""Experiment statistics (personalize.md §7.5–7.7, §10.2), in pure Python.

* :func:`minimum_sample_size` — units per variant for a two-sided two-proportion test;
* :func:`compare_binary` — two-proportion z-test (pooled standard error for the test, unpooled
  for the confidence interval of the difference), Bonferroni-corrected;
* :func:`compare_continuous` — Welch's t-test from per-arm summaries (n, Σx, Σx²);
* :func:`chance_to_beat_control` — GrowthBook's Bayesian "chance to win" (``gbstats`` 0.8.0,
  ``EffectBayesianABTest`` with its defaults: relative effect, flat prior), reproduced exactly;
* :func:`srm_check` — sample-ratio-mismatch chi-square goodness-of-fit test;
* :func:`verdict` — WINNER / INCONCLUSIVE / LEADING / INSUFFICIENT_DATA for the primary goal.

No function returns NaN or infinity: figures that are undefined for the input (a rate with zero
units, an uplift over a zero control rate, a p-value with fewer than two units in an arm of a
t-test, …) are ``None``. Malformed input (negative counts, more conversions than units, a
non-finite total, ``alpha`` outside (0, 1)) raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from innkeeper.personalize.experiments._distributions import (
    chi2_sf,
    norm_cdf,
    norm_pdf,
    norm_ppf,
    t_ppf,
    t_two_sided_p,
)

__all__ = [
    "BayesianResult",
    "Comparison",
    "Direction",
    "Proportion",
    "SrmResult",
    "Summary",
    "Verdict",
    "chance_to_beat_control",
    "compare_binary",
    "compare_continuous",
    "minimum_sample_size",
    "srm_check",
    "verdict",
]

Direction = Literal["INCREASE", "DECREASE"]
"""A goal's good direction (``goalCalculation.calculation``)."""


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Sufficient statistics of a continuous metric in one arm: units, Σx and Σx²."""

    n: int
    total: float
    total_squares: float


@dataclass(frozen=True)
class Proportion:
    """A binary metric in one arm: exposed units and units that converted."""

    units: int
    conversions: int


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A variant compared with the control on one goal.

    ``rate_*`` is the conversion rate (binary goals) or the mean per unit (continuous goals).
    ``uplift`` is relative, ``(rate_variant - rate_control) / rate_control`` (``None`` when the
    control rate is 0); ``difference`` is absolute. ``confidence`` is ``1 - p_value``.
    ``ci_low``/``ci_high`` bound the absolute difference at level ``1 - alpha/comparisons``.
    ``significant`` is ``p_value < alpha/comparisons``. ``statistic`` is z (binary) or Welch's t
    (continuous, with ``degrees_of_freedom``), signed so that positive means variant > control.
    """

    rate_control: float | None
    rate_variant: float | None
    uplift: float | None
    difference: float | None
    p_value: float | None
    confidence: float | None
    ci_low: float | None
    ci_high: float | None
    significant: bool
    statistic: float | None = None
    degrees_of_freedom: float | None = None
    units_control: int = 0
    units_variant: int = 0


@dataclass(frozen=True)
class BayesianResult:
    """gbstats' Bayesian result for a variant vs the control (relative effect, flat prior).

    ``chance_to_win`` is the posterior probability that the variant is better than the control in
    the goal's good direction; ``expected`` the posterior mean of the relative uplift, with
    standard deviation ``stddev`` and the ``1 - alpha`` credible interval ``ci_low``..``ci_high``.
    ``risk_control`` / ``risk_variant`` are the expected relative loss of shipping the control /
    the variant (gbstats' ``risk[0]`` / ``risk[1]``). When gbstats would return its uninformative
    default (no units, zero control mean, zero variance in an arm), ``chance_to_win`` is 0.5 like
    gbstats, the other figures are ``None`` and ``error`` says why.
    """

    chance_to_win: float
    expected: float | None
    stddev: float | None
    ci_low: float | None
    ci_high: float | None
    risk_control: float | None
    risk_variant: float | None
    error: str | None = None


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check: chi-square goodness of fit of observed units to the configured weights.

    ``chi_square`` is ``None`` when it is infinite (units observed in an arm with weight 0).
    """

    p_value: float
    mismatch: bool
    chi_square: float | None = None
    degrees_of_freedom: int = 0


@dataclass(frozen=True)
class Verdict:
    """Experiment status for the primary goal (§7.7, §10.2).

    ``variant_ref`` is the winner (``WINNER``), the best variant by point estimate (``LEADING``;
    the control ref when no variant beats it), the best variant (``INCONCLUSIVE``, informational)
    or ``None`` (``INSUFFICIENT_DATA``). ``reason`` is a short human-readable explanation.
    """

    status: Literal["WINNER", "INCONCLUSIVE", "LEADING", "INSUFFICIENT_DATA"]
    variant_ref: str | None
    reason: str


# --- helpers ---------------------------------------------------------------------------------


def _check_alpha(alpha: float, comparisons: int) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ValueError(f"comparisons must be a positive integer, got {comparisons!r}")
    return alpha / comparisons


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")


def _check_proportion(units: int, conversions: int, arm: str) -> None:
    _check_count(units, f"{arm} units")
    _check_count(conversions, f"{arm} conversions")
    if conversions > units:
        raise ValueError(f"{arm} conversions ({conversions}) exceed {arm} units ({units})")


def _check_summary(summary: Summary, arm: str) -> None:
    _check_count(summary.n, f"{arm} n")
    if not (math.isfinite(summary.total) and math.isfinite(summary.total_squares)):
        raise ValueError(f"{arm} totals must be finite, got {summary!r}")
    if summary.total_squares < 0:
        raise ValueError(f"{arm} total_squares must not be negative, got {summary.total_squares!r}")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _uplift(rate_control: float, rate_variant: float) -> float | None:
    if rate_control == 0:
        return None
    return _finite((rate_variant - rate_control) / rate_control)


def _sample_variance(summary: Summary) -> float:
    """Unbiased sample variance (n - 1 denominator), clamped at 0 against rounding; needs n >= 2."""
    mean = summary.total / summary.n
    variance = (summary.total_squares - summary.total * mean) / (summary.n - 1)
    return max(variance, 0.0)


# --- sample size -----------------------------------------------------------------------------


def minimum_sample_size(base_rate: float = 0.02, mdd: float = 0.2, confidence: float = 0.95, power: float = 0.8) -> int:
    """Minimum units per variant (§7.7) for a two-sided two-proportion test.

    ``n = (z_{1-α/2} + z_{power})² · (p₁(1−p₁) + p₂(1−p₂)) / (p₂ − p₁)²`` with ``p₁ = base_rate``,
    ``p₂ = p₁·(1 + mdd)`` (``mdd`` is the relative minimum detectable difference) and
    ``α = 1 − confidence``, rounded up.

    The z values are exact normal quantiles (``NormalDist().inv_cdf``: 1.959964… and 0.841621…).
    They give 21,105.64 → **21,106** for the defaults (2 %, 20 %, 95 %, 80 %), the figure the
    contract states; the contract's "z = 1.960, 0.842" are those quantiles rounded for display —
    plugging the rounded values in would give 21,112.

    Raises :class:`ValueError` unless ``0 < base_rate < 1``, ``mdd != 0``, ``0 < p₂ <= 1`` and
    ``confidence`` and ``power`` are in (0, 1).
    """
    if not 0.0 < base_rate < 1.0:
        raise ValueError(f"base_rate must be between 0 and 1, got {base_rate!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be between 0 and 1, got {power!r}")
    p1 = base_rate
    p2 = base_rate * (1.0 + mdd)
    if mdd == 0 or not 0.0 < p2 <= 1.0:
        raise ValueError(f"mdd must be non-zero and keep base_rate·(1 + mdd) in (0, 1], got {mdd!r}")
    z_alpha = norm_ppf(1.0 - (1.0 - confidence) / 2.0)
    z_power = norm_ppf(power)
    n = (z_alpha + z_power) ** 2 * (p1 * (1.0 - p1) + p2 * (1.0 - p2)) / (p2 - p1) ** 2
    return math.ceil(n)


# --- frequentist comparisons -----------------------------------------------------------------


def compare_binary(
    control_units: int,
    control_conversions: int,
    variant_units: int,
    variant_conversions: int,
    *,
    alpha: float = 0.05,
    comparisons: int = 1,
) -> Comparison:
    """Two-proportion z-test of a variant against the control, Bonferroni-corrected (``alpha/comparisons``).

    ``z = (p_v − p_c) / sqrt(p̄(1−p̄)(1/n_c + 1/n_v))`` with the pooled rate ``p̄``; two-sided
    ``p = 2·Q(|z|)``. The confidence interval of ``p_v − p_c`` uses the unpooled standard error
    ``sqrt(p_c(1−p_c)/n_c + p_v(1−p_v)/n_v)`` and ``z_{1 − alpha/(2·comparisons)}``.

    Edge cases: an arm with zero units gives ``None`` rates and no test; both arms at 0 % (or both
    at 100 %) are identical: ``p = 1``, ``z = 0``, a zero-width interval at the difference (0).
    """
    _check_proportion(control_units, control_conversions, "control")
    _check_proportion(variant_units, variant_conversions, "variant")
    level = _check_alpha(alpha, comparisons)
    if control_units == 0 or variant_units == 0:
        return Comparison(
            rate_control=control_conversions / control_units if control_units else None,
            rate_variant=variant_conversions / variant_units if variant_units else None,
            uplift=None,
            difference=None,
            p_value=None,
            confidence=None,
            ci_low=None,
            ci_high=None,
            significant=False,
            units_control=control_units,
            units_variant=variant_units,
        )
    rate_c = control_conversions / control_units
    rate_v = variant_conversions / variant_units
    difference = rate_v - rate_c
    pooled = (control_conversions + variant_conversions) / (control_units + variant_units)
    pooled_se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control_units + 1.0 / variant_units))
    if pooled_se == 0.0:
        z, p_value = 0.0, 1.0
    else:
        z = difference / pooled_se
        p_value = min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))
    se = math.sqrt(rate_c * (1.0 - rate_c) / control_units + rate_v * (1.0 - rate_v) / variant_units)
    margin = norm_ppf(1.0 - level / 2.0) * se
    return Comparison(
        rate_control=rate_c,
        rate_variant=rate_v,
        uplift=_uplift(rate_c, rate_v),
        difference=difference,
        p_value=p_value,
        confidence=1.0 - p_value,
        ci_low=difference - margin,
        ci_high=difference + margin,
        significant=p_value < level,
        statistic=z,
        units_control=control_units,
        units_variant=variant_units,
    )


def _untested(mean_c: float | None, mean_v: float | None, n_c: int, n_v: int) -> Comparison:
    """A continuous comparison without a test: the means (when defined) and nothing else."""
    difference: float | None = None
    uplift: float | None = None
    if mean_c is not None and mean_v is not None:
        difference = _finite(mean_v - mean_c)
        uplift = _uplift(mean_c, mean_v) if difference is not None else None
    return Comparison(
        rate_control=mean_c,
        rate_variant=mean_v,
        uplift=uplift,
        difference=difference,
        p_value=None,
        confidence=None,
        ci_low=None,
        ci_high=None,
        significant=False,
        units_control=n_c,
        units_variant=n_v,
    )


def compare_continuous(control: Summary, variant: Summary, *, alpha: float = 0.05, comparisons: int = 1) -> Comparison:
    """Welch's unequal-variance t-test of a variant against the control, from per-arm summaries.

    ``t = (x̄_v − x̄_c) / se`` with ``se² = s_c²/n_c + s_v²/n_v`` (unbiased sample variances) and
    Welch–Satterthwaite degrees of freedom; two-sided p-value; the interval of ``x̄_v − x̄_c`` uses
    ``t_{1 − alpha/(2·comparisons), df}``. Same figures as
    ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``.

    Edge cases: an arm with fewer than two units has no variance estimate, so no test (``None``
    p-value and interval; means are reported when ``n >= 1``). Both arms without variance: equal
    means are identical arms (``p = 1``, ``t = 0``); different means are an infinitely strong
    signal, reported as ``p = 0`` with ``statistic = None`` (t is infinite) and a zero-width
    interval at the difference.
    """
    _check_summary(control, "control")
    _check_summary(variant, "variant")
    level = _check_alpha(alpha, comparisons)
    mean_c = control.total / control.n if control.n else None
    mean_v = variant.total / variant.n if variant.n else None
    if mean_c is None or mean_v is None or control.n < 2 or variant.n < 2 or not math.isfinite(mean_v - mean_c):
        return _untested(mean_c, mean_v, control.n, variant.n)
    difference = mean_v - mean_c
    term_c = _sample_variance(control) / control.n
    term_v = _sample_variance(variant) / variant.n
    se2 = term_c + term_v
    statistic: float | None = None
    df: float | None = None
    ci_low: float | None
    ci_high: float | None
    if se2 > 0.0:
        se = math.sqrt(se2)
        statistic = _finite(difference / se)
    if statistic is None:
        # No variance in either arm (or a t too large for a float): the difference is certain.
        p_value = 1.0 if difference == 0.0 else 0.0
        statistic = 0.0 if difference == 0.0 else None
        ci_low = ci_high = difference
    else:
        # Welch–Satterthwaite, with the terms scaled by se² so that tiny variances cannot underflow.
        share_c, share_v = term_c / se2, term_v / se2
        df = 1.0 / (share_c * share_c / (control.n - 1) + share_v * share_v / (variant.n - 1))
        p_value = t_two_sided_p(statistic, df)
        margin = t_ppf(1.0 - level / 2.0, df) * se
        ci_low, ci_high = _finite(difference - margin), _finite(difference + margin)
    return Comparison(
        rate_control=mean_c,
        rate_variant=mean_v,
        uplift=_uplift(mean_c, mean_v),
        difference=difference,
        p_value=p_value,
        confidence=1.0 - p_value,
        ci_low=ci_low,
        ci_high=ci_high,
        significant=p_value < level,
        statistic=statistic,
        degrees_of_freedom=df,
        units_control=control.n,
        units_variant=variant.n,
    )


# --- Bayesian (gbstats) ----------------------------------------------------------------------

_BASELINE_ZERO = "control mean is zero: relative uplift is undefined"
_NO_UNITS = "an arm has no units"
_ZERO_VARIANCE = "an arm has zero variance (all units alike, or fewer than two units)"
_OVERFLOW = "uplift variance is not finite"


def _moments(arm: Proportion | Summary, name: str) -> tuple[int, float, float]:
    """``(n, mean, variance)`` exactly as gbstats' ``ProportionStatistic`` / ``SampleMeanStatistic`` define them."""
    if isinstance(arm, Proportion):
        _check_proportion(arm.units, arm.conversions, name)
        mean = arm.conversions / arm.units if arm.units else 0.0
        return arm.units, mean, mean * (1.0 - mean)
    _check_summary(arm, name)
    mean = arm.total / arm.n if arm.n else 0.0
    variance = 0.0 if arm.n <= 1 else (arm.total_squares - arm.total**2 / arm.n) / (arm.n - 1)
    return arm.n, mean, variance


def _uninformative(error: str) -> BayesianResult:
    return BayesianResult(
        chance_to_win=0.5,
        expected=None,
        stddev=None,
        ci_low=None,
        ci_high=None,
        risk_control=None,
        risk_variant=None,
        error=error,
    )


def chance_to_beat_control(
    control: Proportion | Summary,
    variant: Proportion | Summary,
    *,
    alpha: float = 0.05,
    inverse: bool = False,
) -> BayesianResult:
    """Bayesian chance that the variant beats the control, as GrowthBook computes it.

    Reproduces ``gbstats.bayesian.tests.EffectBayesianABTest`` (gbstats 0.8.0) with its default
    configuration: relative effect, improper flat prior, so the posterior of the relative uplift is
    the normal approximation ``N(μ, σ²)`` with (``a`` = control, ``b`` = variant)::

        μ  = (mean_b − mean_a) / mean_a
        σ² = var_b / (mean_a² · n_b) + var_a · mean_b² / (mean_a⁴ · n_a)

    where a binary arm (:class:`Proportion`) has ``var = p(1 − p)`` and a continuous arm
    (:class:`Summary`) the unbiased sample variance. Then ``chance_to_win = P(uplift > 0)``
    (``P(uplift < 0)`` with ``inverse=True``, for goals where lower is better), the credible
    interval is ``μ ± z_{1−alpha/2}·σ``, and the risks are the expected losses
    ``E[max(uplift, 0)]`` (shipping the control) and ``E[max(−uplift, 0)]`` (shipping the variant),
    swapped when ``inverse``. Both arms must be the same kind (both :class:`Proportion` or both
    :class:`Summary`).
    """
    if isinstance(control, Proportion) != isinstance(variant, Proportion):
        raise ValueError("control and variant must both be Proportion or both be Summary")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    n_a, mean_a, var_a = _moments(control, "control")
    n_b, mean_b, var_b = _moments(variant, "variant")
    # Same checks, in the same order, as gbstats' compute_result().
    if mean_a == 0:
        return _uninformative(_BASELINE_ZERO)
    if n_a == 0 or n_b == 0:
        return _uninformative(_NO_UNITS)
    if var_a <= 0 or var_b <= 0:
        return _uninformative(_ZERO_VARIANCE)
    variance = var_b / (mean_a**2 * n_b) + var_a * mean_b**2 / (mean_a**4 * n_a)
    mean = (mean_b - mean_a) / mean_a
    if not (math.isfinite(variance) and math.isfinite(mean)) or variance <= 0:
        return _uninformative(_OVERFLOW)
    sd = math.sqrt(variance)
    standardized = mean / sd
    chance_to_win = norm_cdf(-standardized) if inverse else norm_cdf(standardized)
    z = norm_ppf(1.0 - alpha / 2.0)
    density = sd * norm_pdf(standardized)
    # E[max(X, 0)] and E[max(-X, 0)] for X ~ N(mean, sd²); gbstats gets them from truncated normals.
    risk_control = max(0.0, mean * norm_cdf(standardized) + density)
    risk_variant = max(0.0, density - mean * norm_cdf(-standardized))
    if inverse:
        risk_control, risk_variant = risk_variant, risk_control
    return BayesianResult(
        chance_to_win=chance_to_win,
        expected=mean,
        stddev=sd,
        ci_low=mean - z * sd,
        ci_high=mean + z * sd,
        risk_control=risk_control,
        risk_variant=risk_variant,
    )


# --- sample ratio mismatch -------------------------------------------------------------------


def srm_check(observed: Sequence[int], expected_weights: Sequence[float], *, threshold: float = 0.001) -> SrmResult:
    """Chi-square goodness-of-fit test of the units per arm against the configured traffic weights.

    Expected counts are ``weight / Σweights · Σobserved``; the p-value is the chi-square survival
    function with ``k − 1`` degrees of freedom (``k`` = arms with a positive weight), as
    ``scipy.stats.chisquare(observed, expected)``. ``mismatch`` is ``p_value < threshold``.

    Edge cases: no units at all, or fewer than two weighted arms → ``p = 1``, no mismatch. An arm
    with weight 0 and no units is ignored; one with weight 0 but units is a certain mismatch
    (``p = 0``, ``chi_square = None`` as the statistic is infinite).
    """
    if len(observed) != len(expected_weights):
        raise ValueError(f"observed has {len(observed)} arms but expected_weights has {len(expected_weights)}")
    for index, count in enumerate(observed):
        _check_count(count, f"observed[{index}]")
    for index, weight in enumerate(expected_weights):
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"expected_weights[{index}] must be a finite non-negative number, got {weight!r}")
    total_weight = math.fsum(expected_weights)
    if total_weight <= 0:
        raise ValueError("expected_weights must contain a positive weight")
    total = sum(observed)
    weighted_arms = sum(1 for weight in expected_weights if weight > 0)
    df = max(weighted_arms - 1, 0)
    if any(weight == 0 and count > 0 for count, weight in zip(observed, expected_weights, strict=True)):
        return SrmResult(p_value=0.0, mismatch=threshold > 0.0, chi_square=None, degrees_of_freedom=df)
    if total == 0 or df == 0:
        return SrmResult(p_value=1.0, mismatch=False, chi_square=0.0, degrees_of_freedom=df)
    chi_square = 0.0
    for count, weight in zip(observed, expected_weights, strict=True):
        if weight > 0:
            expected = weight / total_weight * total
            chi_square += (count - expected) ** 2 / expected
    p_value = chi2_sf(chi_square, df)
    return SrmResult(p_value=p_value, mismatch=p_value < threshold, chi_square=chi_square, degrees_of_freedom=df)


# --- verdict ---------------------------------------------------------------------------------


def verdict(
    comparisons: Mapping[str, Comparison],
    *,
    minimum_sample_size: int,
    direction: Direction = "INCREASE",
    alpha: float = 0.05,
    control_ref: str | None = None,
) -> Verdict:
    """The experiment status for its primary goal (§7.7).

    ``comparisons`` maps each non-control variant ref to its :class:`Comparison` with the control
    (from :func:`compare_binary` or :func:`compare_continuous`); its units are taken from there.
    With ``k = len(comparisons)`` and the goal's ``direction``:

    * the *best* variant is the one with the best difference in the good direction (the first
      one on ties, in mapping order);
    * ``WINNER`` — every arm (control included) has at least ``minimum_sample_size`` units, and the
      best variant has ``p < alpha/k`` (Bonferroni, recomputed here from ``p_value`` whatever
      ``comparisons`` the figures were computed with) and a difference in the good direction;
    * ``INCONCLUSIVE`` — the minimum sample is reached but no variant qualifies (``variant_ref``
      is ``None``);
    * ``LEADING`` — before the minimum sample: ``variant_ref`` is the best variant if it beats
      the control, else ``control_ref``;
    * ``INSUFFICIENT_DATA`` — no variants, or no variant can be compared yet (an arm without units).
    """
    if not comparisons:
        return Verdict("INSUFFICIENT_DATA", None, "the experiment has no variants to compare with the control")
    level = _check_alpha(alpha, len(comparisons))
    sign = 1.0 if direction == "INCREASE" else -1.0
    best_ref: str | None = None
    best: Comparison | None = None
    for ref, comparison in comparisons.items():
        if comparison.difference is None:
            continue
        if best is None or sign * comparison.difference > sign * (best.difference or 0.0):
            best_ref, best = ref, comparison
    if best is None or best.difference is None:
        return Verdict("INSUFFICIENT_DATA", None, "no variant can be compared with the control yet")
    smallest = min(min(c.units_control, c.units_variant) for c in comparisons.values())
    beats_control = sign * best.difference > 0
    if smallest < minimum_sample_size:
        leader = best_ref if beats_control else control_ref
        return Verdict(
            "LEADING",
            leader,
            f"the smallest arm has {smallest} of the {minimum_sample_size} units needed per variant",
        )
    if beats_control and best.p_value is not None and best.p_value < level:
        return Verdict(
            "WINNER",
            best_ref,
            f"{best_ref} differs from the control in the goal's direction with p = {best.p_value:.3g} < {level:.3g}",
        )
    return Verdict("INCONCLUSIVE", None, f"minimum sample reached and no variant is significant at {level:.3g}")
