"""The weekly detector: improved Farrington (Noufaily et al., Stat Med 2012).

For the current week t of each series, a quasi-Poisson log-linear model is
fitted to the past: every week from `years_back` years (plus `window_weeks`)
before t up to `exclude_recent_weeks` before it (a surge in the last half year
must not become its own baseline). A seasonal factor of `seasonal_levels`
levels tells apart the weeks around t's calendar week in each past year (the
reference level) from the rest of each year, cut in equal blocks, so the whole
year informs the fit while the expectation for t is the reference level's. A
linear trend stays only if significant (p < `trend_p`) and if it does not
carry the expectation above anything seen. Past outbreaks are down-weighted:
weeks whose Anscombe residual exceeds `reweight_threshold` weigh s^-2 and the
model is fitted again. The threshold is Noufaily's negative-binomial bound, the
(1 - alpha) quantile of NB(mean mu, variance phi * mu); the p-value is that
NB's upper tail at the observed count, so Benjamini-Hochberg can run over all
series of a month.

All series of one run share the calendar, so they share the design matrix:
the fits run together, as a batched IRLS in numpy (a few ms for a thousand
series). For one series it gives statsmodels' GLM(Poisson, scale="X2") to
numerical precision; the unit tests hold it to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy import stats

from core.config import FarringtonConfig

WEEKS_PER_YEAR = 52
IRLS_STEPS = 30


@dataclass(frozen=True)
class WeekResult:
    """One week of many series: arrays indexed like the input rows."""

    observed: np.ndarray
    expected: np.ndarray
    upper: np.ndarray  # alarm above this
    p_value: np.ndarray  # P(Y >= observed) under NB(expected, phi)
    alarm: np.ndarray  # observed > upper and enough cases in the last four weeks
    dispersion: np.ndarray


def design(t: int, settings: FarringtonConfig, years: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline weeks' indexes and their design (intercept, trend, seasonal dummies).

    The trend is (s - t), so the prediction for t needs only the intercept
    (level 0 is the reference: the weeks around t's calendar week).
    """
    w, levels = settings.window_weeks, settings.seasonal_levels
    first = t - WEEKS_PER_YEAR * years - w
    last = t - max(settings.exclude_recent_weeks, 1)
    weeks = np.arange(first, last + 1)
    lag = (t - weeks) % WEEKS_PER_YEAR
    in_window = (lag <= w) | (lag >= WEEKS_PER_YEAR - w)
    between = WEEKS_PER_YEAR - 2 * w - 1  # weeks between two windows, cut in levels - 1 blocks
    block = 1 + ((WEEKS_PER_YEAR - w - 1 - lag) * (levels - 1)) // between
    factor = np.where(in_window, 0, block)
    present = [level for level in range(1, levels) if np.any(factor == level)]
    columns = [np.ones(len(weeks)), (weeks - t).astype(float)]
    columns += [(factor == level).astype(float) for level in present]
    return weeks, np.column_stack(columns)


def years_available(t: int, settings: FarringtonConfig) -> int:
    """How many past years fit before week t (at most years_back); 0: too little history."""
    return max(0, min(settings.years_back, (t - settings.window_weeks) // WEEKS_PER_YEAR))


def poisson_fit(y: np.ndarray, x: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson log-link fits of each row of y on x with prior weights: (beta, mu).

    Rows are independent fits sharing x; Newton steps solved together. A row stops
    once its own step is under 1e-8: most converge in five steps, and a few slow
    ones must not keep thousands of finished fits iterating to IRLS_STEPS.
    """
    ridge = 1e-9 * np.eye(x.shape[1])
    mu = np.maximum(y, 0.5) + 0.1
    eta = np.log(mu)
    beta = np.zeros((y.shape[0], x.shape[1]))
    active = np.arange(y.shape[0])
    for _ in range(IRLS_STEPS):
        y_a, mu_a, w = y[active], mu[active], prior[active] * mu[active]
        z = eta[active] + (y_a - mu_a) / mu_a
        xtwx = _weighted_gram(x, w) + ridge
        xtwz = (w * z) @ x
        new = np.linalg.solve(xtwx, xtwz[..., None])[..., 0]
        eta[active] = np.clip(new @ x.T, -30, 30)
        mu[active] = np.exp(eta[active])
        moving = np.max(np.abs(new - beta[active]), axis=1) >= 1e-8
        beta[active] = new
        active = active[moving]
        if active.size == 0:
            break
    return beta, mu


def _dispersion(y: np.ndarray, mu: np.ndarray, prior: np.ndarray, params: int) -> np.ndarray:
    """Pearson's X2 / residual df (quasi-Poisson), never below 1."""
    df = max(y.shape[1] - params, 1)
    return np.maximum(np.sum(prior * (y - mu) ** 2 / mu, axis=1) / df, 1.0)


def _covariance_and_hat(
    x: np.ndarray, mu: np.ndarray, prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    w = prior * mu
    xtwx = _weighted_gram(x, w) + 1e-9 * np.eye(x.shape[1])
    inverse = np.linalg.inv(xtwx)
    hat = w * np.sum(np.matmul(x, inverse) * x, axis=2)  # x_n' inverse_s x_n per series s
    return inverse, hat


def _weighted_gram(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """X' W_s X for each row s of w, as one batched matrix product.

    Each week's outer product x_n x_n' is formed once, then one matrix product
    sums them under every series' weights. A three-operand einsum here ran as a
    plain loop: 60 s of a month's run on the 300,000-ticket demo city.
    """
    k = x.shape[1]
    outer = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], k * k)  # x_n x_n' per week
    return (w @ outer).reshape(w.shape[0], k, k)


def _fit(
    y: np.ndarray, x: np.ndarray, settings: FarringtonConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit, down-weight past outbreaks, fit again: (beta, phi, trend p-value, max baseline)."""
    ones = np.ones_like(y, dtype=float)
    beta, mu = poisson_fit(y, x, ones)
    phi = _dispersion(y, mu, ones, x.shape[1])
    _, hat = _covariance_and_hat(x, mu, ones)
    anscombe = (
        1.5
        * (np.cbrt(y) ** 2 - np.cbrt(mu) ** 2)
        / (mu ** (1 / 6) * np.sqrt(phi[:, None] * np.clip(1 - hat, 1e-6, None)))
    )
    outbreak = anscombe > settings.reweight_threshold
    weights = np.where(outbreak, np.maximum(anscombe, settings.reweight_threshold) ** -2.0, 1.0)
    weights *= y.shape[1] / weights.sum(axis=1, keepdims=True)
    beta, mu = poisson_fit(y, x, weights)
    phi = _dispersion(y, mu, weights, x.shape[1])
    inverse, _ = _covariance_and_hat(x, mu, weights)
    trend_se = np.sqrt(phi * inverse[:, 1, 1])
    df = max(y.shape[1] - x.shape[1], 1)
    trend_p = 2 * stats.t.sf(np.abs(beta[:, 1]) / trend_se, df)
    return beta, phi, trend_p, y.max(axis=1)


def nb_upper_and_p(
    expected: np.ndarray, phi: np.ndarray, observed: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noufaily's bound: NB with mean mu and variance phi*mu (Poisson when phi is 1)."""
    expected = np.maximum(expected, 1e-9)
    overdispersed = phi > 1 + 1e-9
    size = expected / np.where(overdispersed, phi - 1, 1.0)
    prob = 1 / np.where(overdispersed, phi, 2.0)
    upper = np.where(
        overdispersed,
        stats.nbinom.ppf(1 - alpha, size, prob),
        stats.poisson.ppf(1 - alpha, expected),
    )
    p_value = np.where(
        overdispersed,
        stats.nbinom.sf(observed - 1, size, prob),
        stats.poisson.sf(observed - 1, expected),
    )
    return upper.astype(float), np.clip(p_value, 0.0, 1.0)


def farrington_week(counts: np.ndarray, t: int, settings: FarringtonConfig) -> WeekResult | None:
    """Week t of each row of counts (series x weeks); None when history is too short."""
    return farrington_weeks(counts, [t], settings)[0]


def farrington_weeks(
    counts: np.ndarray, weeks: Sequence[int], settings: FarringtonConfig
) -> list[WeekResult | None]:
    """`farrington_week` of each of these weeks, in their order, fitted together.

    A baseline's design depends on its week only through how many past years it
    holds, so the weeks with as many years share one design matrix: their fits are
    rows of one batch. A chart's 52 weeks are then one fit, not 52 small ones.
    """
    counts = np.atleast_2d(np.asarray(counts))
    found: dict[int, WeekResult | None] = {}
    same_years: dict[int, list[int]] = {}
    for t in weeks:
        same_years.setdefault(years_available(t, settings), []).append(t)
    for years, group in same_years.items():
        if years == 0 or counts.shape[0] == 0:
            found.update(dict.fromkeys(group))
            continue
        batch = _weeks_at_once(counts, group, years, settings)
        rows = counts.shape[0]
        for i, t in enumerate(group):
            part = slice(i * rows, (i + 1) * rows)
            found[t] = WeekResult(*(field[part] for field in _arrays(batch)))
    return [found[t] for t in weeks]


def _arrays(result: WeekResult) -> tuple[np.ndarray, ...]:
    """The result's arrays in field order (dataclasses.astuple would copy them deeply)."""
    return tuple(getattr(result, field.name) for field in fields(result))


def _weeks_at_once(
    counts: np.ndarray, weeks: list[int], years: int, settings: FarringtonConfig
) -> WeekResult:
    """The weeks' series stacked (week by week, each all rows), tested as one batch."""
    baseline, x_trend = design(weeks[0], settings, years)
    offsets = baseline - weeks[0]  # the same for every week with these years
    y = np.concatenate([counts[:, t + offsets] for t in weeks]).astype(float)
    observed = np.concatenate([counts[:, t] for t in weeks]).astype(np.int64)
    recent = np.concatenate([counts[:, max(t - 3, 0) : t + 1].sum(axis=1) for t in weeks])
    x_flat = np.delete(x_trend, 1, axis=1)
    beta_t, phi_t, trend_p, top = _fit(y, x_trend, settings)
    beta_f, phi_f, _, _ = _fit(y, x_flat, settings)
    expected_t, expected_f = np.exp(beta_t[:, 0]), np.exp(beta_f[:, 0])
    # with one past year the reference weeks sit at one end of the baseline, where a
    # trend and the seasonal factor cannot be told apart: no trend then
    keep_trend = (trend_p < settings.trend_p) & (expected_t <= top) & (years >= 2)
    expected = np.where(keep_trend, expected_t, expected_f)
    phi = np.where(keep_trend, phi_t, phi_f)
    expected = np.where(y.sum(axis=1) == 0, 0.0, expected)
    upper, p_value = nb_upper_and_p(expected, phi, observed, settings.alpha)
    alarm = (observed > upper) & (recent >= settings.min_cases_4_weeks)
    return WeekResult(observed, expected, upper, p_value, alarm, phi)
