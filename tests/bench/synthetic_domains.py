"""Generated data sets from domains the default B2B model knows nothing of, for
``bench_discover --data``: rows of string cells (as a CSV export gives them) and a 0/1
outcome column ``y``. Seeded, so a run is repeatable.

- ``bank``: shaped like a bank's term-deposit telemarketing export (the public "bank
  marketing" columns, dotted names included): the campaign period sets macro-economic
  columns with few distinct values (``emp.var.rate``, ``nr.employed``) and most of the
  conversion rate; most clients were never contacted before (``pdays`` = 999,
  ``previous`` = 0); skewed categories (``job``: students and retirees convert, blue-collar
  less); about 11 % won. Step-shaped effects, where bins fit.
- ``linear``: the outcome's log-odds are linear in call length, calls made and balance,
  plus a few categories: the shape logistic regression fits exactly and bins approximate.

The effects are invented, not fitted to any real data; they exist to test that discovery
finds signals of kinds X Education does not show.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

Row = dict[str, str]

_PERIODS = [  # share, months, emp.var.rate, nr.employed, euribor3m range, cpi, cci, won rate
    (0.39, ("may", "jun", "jul", "aug", "nov"), 1.4, 5228.1, (4.85, 4.97),
     (93.918, 94.465, 93.444), (-42.7, -41.8, -36.1), 0.052),
    (0.19, ("may",), 1.1, 5191.0, (4.85, 4.86), (93.994,), (-36.4,), 0.031),
    (0.09, ("oct", "nov"), -0.1, 5195.8, (4.0, 4.2), (93.2,), (-42.0,), 0.065),
    (0.21, ("apr", "may", "jun", "jul", "aug", "nov"), -1.8, 5099.1, (1.2, 1.45),
     (92.893, 93.075), (-46.2, -47.1), 0.14),
    (0.04, ("jun", "jul", "aug"), -2.9, 5076.2, (0.7, 1.05), (92.963, 92.201),
     (-40.8, -31.4), 0.36),
    (0.026, ("mar", "apr", "may", "jun", "jul", "aug"), -3.4, 5017.5, (0.6, 0.8),
     (92.431, 92.379), (-26.9, -29.8), 0.42),
    (0.019, ("sep", "oct", "nov", "dec"), -1.7, 4991.6, (0.7, 1.0), (94.055, 94.215),
     (-39.8, -40.3), 0.52),
    (0.015, ("mar", "apr"), -1.8, 5008.7, (0.6, 0.9), (92.843, 93.369), (-50.0, -34.8), 0.50),
    (0.015, ("may", "jun", "jul"), -1.1, 4963.6, (0.7, 1.3), (94.199, 94.601),
     (-37.5, -49.5), 0.47),
    (0.005, ("oct", "nov", "dec"), -3.0, 5023.5, (0.7, 0.75), (92.713,), (-33.0,), 0.51),
]  # fmt: skip
_JOBS = {  # share, effect on the log-odds
    "admin.": (0.25, 0.1), "blue-collar": (0.225, -0.5), "technician": (0.164, 0.0),
    "services": (0.096, -0.35), "management": (0.071, 0.0), "retired": (0.042, 0.8),
    "entrepreneur": (0.035, -0.3), "self-employed": (0.035, -0.1), "housemaid": (0.026, -0.1),
    "unemployed": (0.025, 0.25), "student": (0.021, 1.0), "unknown": (0.008, 0.0),
}  # fmt: skip
_EDUCATION = {
    "university.degree": (0.295, 0.1), "high.school": (0.23, 0.0), "basic.9y": (0.147, -0.2),
    "professional.course": (0.127, 0.0), "basic.4y": (0.10, 0.0), "basic.6y": (0.056, -0.15),
    "unknown": (0.042, 0.2), "illiterate": (0.003, 0.3),
}  # fmt: skip


def _pick(rng: random.Random, table: dict[str, tuple[float, float]]) -> tuple[str, float]:
    name = rng.choices(list(table), [share for share, _ in table.values()])[0]
    return name, table[name][1]


def _won(rng: random.Random, z: float) -> str:
    return "1" if rng.random() < 1 / (1 + math.exp(-z)) else "0"


def _bank_row(rng: random.Random) -> Row:
    period = rng.choices(_PERIODS, [p[0] for p in _PERIODS])[0]
    _, months, emp, nr, eur, cpis, ccis, rate = period
    k = rng.randrange(len(months))
    z = math.log(rate / (1 - rate)) - 0.25  # the effects below add about as much back
    job, effect = _pick(rng, _JOBS)
    education, effect_edu = _pick(rng, _EDUCATION)
    z += effect + effect_edu
    retired = job == "retired"
    age = max(17, min(98, int(rng.gauss(63 if retired else 38, 7 if retired else 9))))
    age = rng.randint(18, 28) if job == "student" else age
    z += (0.4 if age < 25 else 0.0) + (0.6 if age > 60 else 0.0)
    marital = rng.choices(["married", "single", "divorced", "unknown"], [60.5, 28, 11.2, 0.3])[0]
    default = rng.choices(["no", "unknown", "yes"], [79, 20.9, 0.1])[0]
    contact = "telephone" if rng.random() < (0.55 if rate < 0.1 else 0.15) else "cellular"
    day = rng.choice(["mon", "tue", "wed", "thu", "fri"])
    campaign = 1 + min(int(rng.expovariate(1 / 1.6)), 40)
    z += 0.15 * (marital == "single") - 0.5 * (default == "unknown")
    z -= 0.7 * (contact == "telephone")
    z += {"thu": 0.1, "mon": -0.15}.get(day, 0.0) - 0.08 * (min(campaign, 10) - 1)
    r = rng.random()
    if r < 0.863:
        previous, pdays, outcome = 0, 999, "nonexistent"
    elif r < 0.966:
        previous, outcome = rng.choice([1, 1, 1, 2, 3]), "failure"
        pdays = 999 if rng.random() < 0.85 else rng.randint(0, 27)
        z += 0.3
    else:
        previous, pdays, outcome = rng.choice([1, 1, 2, 2, 3, 4]), rng.randint(0, 27), "success"
        z += 2.0
    row = {
        "age": age, "job": job, "marital": marital, "education": education, "default": default,
        "housing": rng.choices(["yes", "no", "unknown"], [52, 45.5, 2.5])[0],
        "loan": rng.choices(["no", "yes", "unknown"], [82, 15.5, 2.5])[0],
        "contact": contact, "month": months[k], "day_of_week": day, "campaign": campaign,
        "pdays": pdays, "previous": previous, "poutcome": outcome, "emp.var.rate": emp,
        "cons.price.idx": cpis[k % len(cpis)], "cons.conf.idx": ccis[k % len(ccis)],
        "euribor3m": round(rng.uniform(*eur), 3), "nr.employed": nr,
    }  # fmt: skip
    return {**{c: str(v) for c, v in row.items()}, "y": _won(rng, z)}


def _linear_row(rng: random.Random) -> Row:
    duration, age = rng.expovariate(1 / 250), rng.randint(18, 90)
    balance, campaign = rng.gauss(1500, 3000), 1 + int(rng.expovariate(1 / 2))
    job = rng.choice(["admin.", "blue-collar", "technician", "services", "management",
                      "retired", "student", "unknown"])  # fmt: skip
    contact = rng.choice(["cellular", "telephone", "unknown"])
    month = rng.choice(["may", "jun", "jul", "aug", "oct", "mar", "sep"])
    z = -3.2 + 0.004 * duration - 0.15 * campaign + 0.00005 * balance
    z += 0.9 * (job in ("retired", "student")) - 1.0 * (contact == "unknown")
    z += 0.8 * (month in ("mar", "sep", "oct")) + 0.01 * (age - 40) * (age > 60)
    row = {"age": age, "job": job, "balance": f"{balance:.0f}", "contact": contact,
           "month": month, "duration": int(duration), "campaign": campaign}  # fmt: skip
    return {**{c: str(v) for c, v in row.items()}, "y": _won(rng, z)}


DOMAINS: dict[str, Callable[[random.Random], Row]] = {"bank": _bank_row, "linear": _linear_row}


def generate(domain: str, n: int, seed: int) -> list[Row]:
    """``n`` rows of ``domain`` (a key of :data:`DOMAINS`), the same for the same seed."""
    rng = random.Random(seed)
    return [DOMAINS[domain](rng) for _ in range(n)]
