"""SYNTHETIC, LABELLED: card transactions from a generative model of customers and fraud patterns.

Banks cannot publish transactions, and none ship inside a Python package, so the banks
scenario generates them. Nothing here is real data. Each transaction is drawn from one of:

- legitimate spending: a customer's usual merchants, amounts around their own habit, mostly
  daytime, close to home, card present for shops;
- card testing (fraud): bursts of small online charges, minutes apart;
- account takeover (fraud): large online or electronics purchases, often at night and abroad;
- skimmed card (fraud): card-present cash withdrawals far from home, soon after another use.

The patterns overlap with honest behaviour on purpose (people do buy laptops abroad at
night), so the labels are only partly predictable from any one feature: a linear model sees
less of the interactions than a non-linear one, which is what the edge/cloud pair shows.

Features (the model input): log amount, log amount relative to the customer's mean, hour of
day as sine/cosine, merchant category one-hot, log distance from home, log minutes since the
previous transaction, transactions in the last 24 h, card present, foreign.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

CLASSES = ("legit", "fraud")
CATEGORIES = ("grocery", "fuel", "restaurant", "online", "electronics", "travel", "atm", "other")
FRAUD_RATE = 0.10  # far above real rates (~0.1%) so accuracy is informative on small samples
FEATURES = 2 + 2 + len(CATEGORIES) + 5


def generate(n: int, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.str_]]:
    """`n` transactions as feature vectors and their labels ("legit" / "fraud")."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < FRAUD_RATE
    pattern = np.where(fraud, rng.integers(1, 4, n), 0)  # 0 legit, 1 testing, 2 takeover, 3 skim
    rows = [_transaction(int(p), rng) for p in pattern]
    return np.asarray(rows, dtype=np.float32), np.asarray(CLASSES)[fraud.astype(int)]


def _transaction(pattern: int, rng: np.random.Generator) -> list[float]:
    habit = rng.lognormal(3.5, 0.6)  # the customer's typical amount, ~$33
    if pattern == 0:
        category = rng.choice(len(CATEGORIES), p=[0.28, 0.12, 0.18, 0.15, 0.04, 0.04, 0.09, 0.10])
        amount = habit * rng.lognormal(0.0, 0.7)
        hour = rng.normal(14, 4) % 24
        distance = rng.lognormal(1.5, 1.2)
        since = rng.lognormal(6.0, 1.2)
        recent = rng.poisson(3)
        present = rng.random() < (0.15 if CATEGORIES[category] == "online" else 0.9)
        foreign = rng.random() < 0.04
    elif pattern == 1:  # card testing
        category = rng.choice(len(CATEGORIES), p=[0.05, 0.0, 0.05, 0.6, 0.1, 0.0, 0.0, 0.2])
        amount = rng.lognormal(0.8, 0.8)
        hour = rng.uniform(0, 24)
        distance = rng.lognormal(2.0, 1.5)
        since = rng.lognormal(1.5, 1.0)
        recent = rng.poisson(9)
        present = rng.random() < 0.1
        foreign = rng.random() < 0.3
    elif pattern == 2:  # account takeover
        category = rng.choice(len(CATEGORIES), p=[0.0, 0.0, 0.05, 0.45, 0.35, 0.15, 0.0, 0.0])
        amount = habit * rng.lognormal(1.6, 0.8)
        hour = rng.normal(2, 4) % 24
        distance = rng.lognormal(3.5, 2.0)
        since = rng.lognormal(5.0, 1.5)
        recent = rng.poisson(4)
        present = rng.random() < 0.2
        foreign = rng.random() < 0.45
    else:  # skimmed card
        category = rng.choice(len(CATEGORIES), p=[0.1, 0.1, 0.0, 0.0, 0.1, 0.0, 0.7, 0.0])
        amount = habit * rng.lognormal(1.2, 0.6)
        hour = rng.normal(22, 3) % 24
        distance = rng.lognormal(5.0, 1.0)
        since = rng.lognormal(3.5, 1.0)
        recent = rng.poisson(5)
        present = True
        foreign = rng.random() < 0.35
    onehot = [0.0] * len(CATEGORIES)
    onehot[int(category)] = 1.0
    angle = 2 * np.pi * hour / 24
    return [
        float(np.log1p(amount)),
        float(np.log(amount / habit)),
        float(np.sin(angle)),
        float(np.cos(angle)),
        *onehot,
        float(np.log1p(distance)),
        float(np.log1p(since)),
        float(recent),
        float(present),
        float(foreign),
    ]
