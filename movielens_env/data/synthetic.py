"""A seeded generator of MovieLens-shaped rating logs that keeps its ground truth.

Every user has a latent taste vector and bias, every item a latent vector, bias and long-tailed
popularity. Which items a user rates depends on popularity and (not at random) on taste; the star
rating is an ordered-logit draw around the user-item utility, with thresholds set so that the
shares of 1..5 stars match MovieLens. Because the model is kept, the expected rating of any
(user, item) pair is known exactly: that is the ``oracle`` reward model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import MovieLensRecError
from .formats import ML_100K_GENRES
from .parsing import RawRatings

# (users, items, ratings) of the GroupLens releases each synthetic shape mimics; and a small
# world whose references and runs take seconds (``benchmark --quick``).
SYNTHETIC_SHAPES: dict[str, tuple[int, int, int]] = {
    "synthetic-small": (300, 600, 20_000),
    "synthetic-100k": (943, 1_682, 100_000),
    "synthetic-1m": (6_040, 3_706, 1_000_209),
    "synthetic-25m": (162_541, 59_047, 25_000_095),
}
SYNTHETIC_ALIASES = {"synthetic": "synthetic-100k"}
# Shares of 1..5 stars in ml-100k.
RATING_SHARES = np.array([0.0611, 0.1137, 0.2715, 0.3417, 0.2120])
MIN_RATINGS_PER_USER = 20
# Bump when the generator's output changes, so that prepared caches of old output are not used.
GENERATOR_VERSION = 2
# MovieLens' genres (ml-100k's, without "unknown") and roughly their shares of ml-100k's
# genre labels; a synthetic item gets 1 to 3 of them.
SYNTHETIC_GENRES = ML_100K_GENRES[1:]
_GENRE_SHARES = np.array([9, 5, 2, 4, 18, 4, 2, 25, 1, 1, 2, 2, 2, 9, 4, 9, 2, 1], dtype=np.float64)
_LATENT_DIM = 8
_NOISE_SCALE = 0.45
_TIME_START = 946_684_800  # 2000-01-01, MovieLens-like epoch seconds
_TIME_RANGE = 3 * 365 * 86_400


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The generator's model: the expected rating of every (user, item) pair.

    Indexed by the generator's 0-based user and item numbers (raw id minus one).
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    thresholds: np.ndarray  # 4 cut points between 1|2, 2|3, 3|4, 4|5 stars
    noise_scale: float
    genre_flags: np.ndarray | None = None  # (items, len(SYNTHETIC_GENRES)) bool

    def item_genres(self) -> np.ndarray | None:
        """Each item's genres as a tuple of names (an object array), or ``None``."""
        if self.genre_flags is None:
            return None
        genres = np.empty(len(self.genre_flags), dtype=object)
        genres[:] = [
            tuple(g for g, on in zip(SYNTHETIC_GENRES, row, strict=True) if on)
            for row in self.genre_flags
        ]
        return genres

    def utility(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Latent utility of each (user, item) pair."""
        dot = np.einsum("ij,ij->i", self.user_factors[users], self.item_factors[items])
        return dot + self.user_bias[users] + self.item_bias[items]

    def true_rating(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Expected star rating in [1, 5]: 1 + sum over cut points of P(utility + noise > cut)."""
        z = (self.utility(users, items)[:, None] - self.thresholds[None, :]) / self.noise_scale
        return 1.0 + (1.0 / (1.0 + np.exp(-z))).sum(axis=1)

    def subset(self, users: np.ndarray, items: np.ndarray) -> SyntheticTruth:
        """The truth restricted to (and re-indexed by) the given user and item numbers."""
        return SyntheticTruth(
            self.user_factors[users],
            self.item_factors[items],
            self.user_bias[users],
            self.item_bias[items],
            self.thresholds,
            self.noise_scale,
            None if self.genre_flags is None else self.genre_flags[items],
        )


def _ratings_per_user(
    rng: np.random.Generator, n_users: int, n_items: int, total: int
) -> np.ndarray:
    """Long-tailed counts, each in [20, 40% of the catalogue], summing to ``total``."""
    cap = max(MIN_RATINGS_PER_USER, int(0.4 * n_items))
    if not MIN_RATINGS_PER_USER * n_users <= total <= cap * n_users:
        raise MovieLensRecError(
            f"cannot spread {total} ratings over {n_users} users with {MIN_RATINGS_PER_USER} to "
            f"{cap} ratings each"
        )
    weight = rng.lognormal(0.0, 1.1, n_users)
    counts = np.full(n_users, MIN_RATINGS_PER_USER, dtype=np.int64)
    remaining = total - counts.sum()
    while remaining > 0:
        room = cap - counts
        share = np.where(room > 0, weight, 0.0)
        extra = np.minimum(np.floor(share / share.sum() * remaining).astype(np.int64), room)
        if extra.sum() == 0:  # rounding left a few: give them to the heaviest users with room
            extra[np.argsort(-share)[:remaining]] = 1
        counts += extra
        remaining = total - counts.sum()
    return counts


def _draw_items(
    rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray, affinity
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct items per user, drawn by popularity and accepted more often when liked."""
    n_items = len(popularity)
    cdf = np.cumsum(popularity / popularity.sum())
    chosen = np.empty(0, dtype=np.int64)  # keys user * n_items + item
    need = counts.copy()
    for _ in range(12):
        users = np.flatnonzero(need > 0)
        if len(users) == 0:
            break
        draws = np.repeat(users, 3 * need[users] + 8)
        items = np.minimum(np.searchsorted(cdf, rng.random(len(draws))), n_items - 1)
        keep = rng.random(len(draws)) < affinity(draws, items)
        chosen = _first_per_user(
            np.concatenate([chosen, draws[keep] * n_items + items[keep]]), n_items, counts
        )
        need = counts - np.bincount(chosen // n_items, minlength=len(counts))
    users = np.flatnonzero(need > 0)
    if len(users):  # the tail no draw reached: fill uniformly among items not yet rated
        extra = []
        for user in users:
            taken = chosen[chosen // n_items == user] % n_items
            free = np.setdiff1d(np.arange(n_items), taken)
            extra.append(user * n_items + rng.choice(free, need[user], replace=False))
        chosen = np.concatenate([chosen, *extra])
    order = np.argsort(chosen, kind="stable")
    return chosen[order] // n_items, chosen[order] % n_items


def _first_per_user(keys: np.ndarray, n_items: int, counts: np.ndarray) -> np.ndarray:
    """Unique keys in first-seen order, at most ``counts[user]`` per user."""
    _, first = np.unique(keys, return_index=True)
    keys = keys[np.sort(first)]
    users = keys // n_items
    order = np.argsort(users, kind="stable")
    users_sorted = users[order]
    starts = np.searchsorted(users_sorted, users_sorted, side="left")
    rank = np.arange(len(users_sorted)) - starts
    return keys[order][rank < counts[users_sorted]]


def generate_synthetic(
    name: str = "synthetic-100k", seed: int = 0
) -> tuple[RawRatings, SyntheticTruth]:
    """Generate the named synthetic log (1-based raw ids) and its ground truth.

    Deterministic given ``name`` and ``seed``.
    """
    name = SYNTHETIC_ALIASES.get(name, name)
    if name not in SYNTHETIC_SHAPES:
        raise MovieLensRecError(
            f"unknown synthetic shape {name!r}; "
            f"valid: {', '.join([*SYNTHETIC_ALIASES, *SYNTHETIC_SHAPES])}"
        )
    n_users, n_items, n_ratings = SYNTHETIC_SHAPES[name]
    return generate_ratings(n_users, n_items, n_ratings, seed)


def generate_ratings(
    n_users: int, n_items: int, n_ratings: int, seed: int = 0
) -> tuple[RawRatings, SyntheticTruth]:
    """Generate a MovieLens-shaped log of any size (users need at least 20 ratings each)."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(_LATENT_DIM)
    user_factors = rng.normal(0.0, scale, (n_users, _LATENT_DIM)).astype(np.float32)
    item_factors = rng.normal(0.0, scale, (n_items, _LATENT_DIM)).astype(np.float32)
    user_bias = rng.normal(0.0, 0.4, n_users).astype(np.float32)
    # Zipf-like popularity over a random order of items; popular items are also better liked.
    log_popularity = -1.0 * np.log(rng.permutation(n_items) + 10.0)
    standard = (log_popularity - log_popularity.mean()) / log_popularity.std()
    item_bias = (0.3 * standard + rng.normal(0.0, 0.4, n_items)).astype(np.float32)
    truth = SyntheticTruth(
        user_factors, item_factors, user_bias, item_bias, np.zeros(4), _NOISE_SCALE
    )

    def affinity(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-2.0 * truth.utility(users, items)))

    counts = _ratings_per_user(rng, n_users, n_items, n_ratings)
    users, items = _draw_items(rng, counts, np.exp(log_popularity), affinity)
    latent = truth.utility(users, items) + _NOISE_SCALE * rng.logistic(0.0, 1.0, len(users))
    thresholds = np.quantile(latent, np.cumsum(RATING_SHARES)[:-1])
    ratings = 1 + np.searchsorted(thresholds, latent).astype(np.float32)
    truth = SyntheticTruth(
        user_factors, item_factors, user_bias, item_bias, thresholds, _NOISE_SCALE
    )
    # Each user rates over a span of days to years starting somewhere in a three-year window.
    start = _TIME_START + rng.integers(0, _TIME_RANGE, n_users)
    span = np.minimum(rng.lognormal(np.log(30 * 86_400), 1.5, n_users), _TIME_RANGE)
    timestamps = start[users] + (rng.random(len(users)) * span[users]).astype(np.int64)
    raw = RawRatings(users=users + 1, items=items + 1, ratings=ratings, timestamps=timestamps)
    genres = _genre_flags(np.random.default_rng([seed, 1]), item_factors)
    return raw, replace(truth, genre_flags=genres)


def _genre_flags(rng: np.random.Generator, item_factors: np.ndarray) -> np.ndarray:
    """1 to 3 genres per item, likelier where the item's latent vector points the genre's way.

    Each genre has a random direction in the latent space, so genres correlate with the
    tastes that drive the ratings, as real genres do. A stream of its own keeps the ratings
    the same as before genres existed.
    """
    n_items, n_genres = len(item_factors), len(SYNTHETIC_GENRES)
    directions = rng.normal(0.0, 1.0, (item_factors.shape[1], n_genres))
    directions /= np.linalg.norm(directions, axis=0)
    affinity = item_factors @ directions * (3.0 * np.sqrt(_LATENT_DIM))
    scores = (
        affinity + np.log(_GENRE_SHARES / _GENRE_SHARES.sum()) + rng.gumbel(size=affinity.shape)
    )
    counts = 1 + rng.binomial(2, 0.3, n_items)
    ranks = np.argsort(np.argsort(-scores, axis=1), axis=1)
    return ranks < counts[:, None]
