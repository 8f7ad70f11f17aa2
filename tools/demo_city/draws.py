"""Drawing from the generator's one random stream: weight tables and delays.

Every draw goes through the single `random.Random(seed)` the caller passes
in, in a fixed order, which is what makes a seed's city reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import timedelta


def cumulative(weights: Sequence[float]) -> list[float]:
    """Running totals of weights: a table to draw from with one bisect per draw."""
    total, result = 0.0, []
    for weight in weights:
        total += weight
        result.append(total)
    return result


def minutes(rng: random.Random, median: float, spread: float) -> timedelta:
    """A log-normal delay: mostly about the median, now and then much longer."""
    return timedelta(minutes=rng.lognormvariate(math.log(median), spread))
