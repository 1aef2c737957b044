"""Special functions for the experiment statistics, in pure Python (``math`` and ``statistics`` only).

Innkeeper does not depend on scipy or numpy at runtime, so the few distribution functions the
statistics need are implemented here:

* standard normal: ``norm_cdf``, ``norm_sf`` (via ``math.erfc``, accurate in the tails),
  ``norm_pdf``, ``norm_ppf`` (``statistics.NormalDist.inv_cdf``, Wichura's AS 241);
* Student's t: ``t_sf`` / ``t_cdf`` through the regularized incomplete beta function, evaluated
  with the Lentz continued fraction (Numerical Recipes §6.4), and ``t_ppf`` by safeguarded Newton
  iteration on ``t_cdf``;
* chi-square: ``chi2_sf`` through the regularized upper incomplete gamma function (series for
  ``x < a + 1``, Lentz continued fraction otherwise; Numerical Recipes §6.2).

The test-suite checks these against scipy.stats on grids of inputs.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_EPS = 1e-16
_TINY = 1e-300
_MAX_ITERATIONS = 100_000
_STANDARD_NORMAL = NormalDist()
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Above this many degrees of freedom the continued fraction loses digits (x = df/(df+t²) is within
# ~1e-7 of 1), and the first-order expansion of t around the normal is accurate to ~1e-14 instead.
_T_ASYMPTOTIC_DF = 1e7
_T_ASYMPTOTIC_MAX_T = 40.0
_LARGE_GAMMA_ARGUMENT = 1e4


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def norm_cdf(x: float) -> float:
    """Standard normal CDF, ``P(Z <= x)``; accurate in both tails."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_sf(x: float) -> float:
    """Standard normal survival function, ``P(Z > x)``; accurate in both tails."""
    return 0.5 * math.erfc(x / _SQRT2)


def norm_ppf(p: float) -> float:
    """Standard normal quantile for ``0 < p < 1``."""
    return _STANDARD_NORMAL.inv_cdf(p)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz)."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITERATIONS):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    return h  # pragma: no cover - converges in O(sqrt(max(a, b))) steps


def _stirling_correction(z: float) -> float:
    """``lgamma(z) - ((z - 0.5)·log z - z + 0.5·log 2π)`` for ``z >= 1e4`` (truncation error < 1e-30)."""
    z2 = z * z
    return (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / (1260.0 * z2)) / z2) / z


def _log_gamma_ratio(a: float, b: float) -> float:
    """``lgamma(a + b) - lgamma(a)``, without the cancellation of the direct difference when ``a`` is large."""
    if a < _LARGE_GAMMA_ARGUMENT:
        return math.lgamma(a + b) - math.lgamma(a)
    return (
        (a - 0.5) * math.log1p(b / a) + b * math.log(a + b) - b + _stirling_correction(a + b) - _stirling_correction(a)
    )


def _beta_front(a: float, b: float, x: float, one_minus_x: float) -> float:
    """``x^a (1-x)^b / B(a, b)``, in logs to avoid overflow and cancellation."""
    big, small = (a, b) if a >= b else (b, a)
    log_inverse_beta = _log_gamma_ratio(big, small) - math.lgamma(small)
    log_x = math.log1p(-one_minus_x) if one_minus_x < 0.5 else math.log(x)
    log_one_minus_x = math.log1p(-x) if x < 0.5 else math.log(one_minus_x)
    return math.exp(log_inverse_beta + a * log_x + b * log_one_minus_x)


def betainc(a: float, b: float, x: float, one_minus_x: float | None = None) -> float:
    """Regularized incomplete beta ``I_x(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``.

    ``one_minus_x`` may be passed when the caller knows ``1 - x`` more precisely than the
    subtraction would give it.
    """
    if one_minus_x is None:
        one_minus_x = 1.0 - x
    if x <= 0.0:
        return 0.0
    if one_minus_x <= 0.0:
        return 1.0
    front = _beta_front(a, b, x, one_minus_x)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, one_minus_x) / b


def _t_sf_asymptotic(t: float, df: float) -> float:
    """``P(T > t)`` for huge ``df``: ``Q(t) + φ(t)·(t³ + t)/(4·df)``, error ``O(df⁻²)``."""
    return norm_sf(t) + norm_pdf(t) * (t**3 + t) / (4.0 * df)


def _use_asymptotic(t: float, df: float) -> bool:
    return df > _T_ASYMPTOTIC_DF and (abs(t) < _T_ASYMPTOTIC_MAX_T or math.isinf(df))


def t_sf(t: float, df: float) -> float:
    """Student's t survival function ``P(T > t)`` with ``df > 0`` degrees of freedom (``inf`` allowed)."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if _use_asymptotic(t, df):
        return _t_sf_asymptotic(t, df)
    t2 = t * t
    # P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2)
    two_tailed = betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))
    return 0.5 * two_tailed if t > 0 else 1.0 - 0.5 * two_tailed


def t_cdf(t: float, df: float) -> float:
    """Student's t CDF ``P(T <= t)``."""
    return t_sf(-t, df)


def t_two_sided_p(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` computed without cancellation."""
    if math.isinf(t):
        return 0.0
    if _use_asymptotic(t, df):
        return min(1.0, 2.0 * _t_sf_asymptotic(abs(t), df))
    t2 = t * t
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2)))


def t_pdf(t: float, df: float) -> float:
    """Student's t density."""
    log_pdf = (
        math.lgamma((df + 1.0) / 2.0)
        - math.lgamma(df / 2.0)
        - 0.5 * math.log(df * math.pi)
        - (df + 1.0) / 2.0 * math.log1p(t * t / df)
    )
    return math.exp(log_pdf)


def t_ppf(p: float, df: float) -> float:
    """Student's t quantile for ``0 < p < 1``: Newton's method on ``t_cdf``, safeguarded by bisection."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_ppf needs 0 < p < 1, got {p!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_t_upper_quantile(p, df)
    return _t_upper_quantile(1.0 - p, df)


def _t_upper_quantile(q: float, df: float) -> float:
    """The ``t > 0`` with ``t_sf(t, df) == q`` for ``0 < q < 0.5``."""
    # Bracket: [0, hi] with t_sf(hi) <= q.
    lo, hi = 0.0, max(1.0, abs(norm_ppf(q)))
    while t_sf(hi, df) > q:
        lo, hi = hi, hi * 2.0
        if math.isinf(hi):  # pragma: no cover - only for q below ~1e-300
            return hi
    t = min(max(-norm_ppf(q), lo), hi)
    for _ in range(200):
        f = t_sf(t, df) - q
        if f > 0:
            lo = t
        else:
            hi = t
        if f == 0.0 or hi - lo <= 4.0 * math.ulp(hi):
            return t
        step = f / t_pdf(t, df)  # d(sf)/dt = -pdf, so Newton's step is t + f/pdf
        candidate = t + step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)
        if abs(candidate - t) <= 2.0 * math.ulp(t):
            return candidate
        t = candidate
    return t  # pragma: no cover


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma ``P(a, x)`` by its series (for ``x < a + 1``)."""
    ap = a
    total = 1.0 / a
    term = total
    for _ in range(_MAX_ITERATIONS):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_continued_fraction(a: float, x: float) -> float:
    """Regularized upper incomplete gamma ``Q(a, x)`` by its continued fraction (for ``x >= a + 1``)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma ``Q(a, x) = Γ(a, x) / Γ(a)`` for ``a > 0``, ``x >= 0``."""
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return 1.0 - _gamma_series(a, x)
    return _gamma_continued_fraction(a, x)


def chi2_sf(x: float, df: int) -> float:
    """Chi-square survival function ``P(X > x)`` with ``df >= 1`` degrees of freedom."""
    return gammaincc(df / 2.0, x / 2.0)
