"""Each person's devices and the cookies that rotate on them (web events, online orders)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from cemlib.synth.noise import hash64, hex_ids, hex_of
from cemlib.synth.text import pick

#: share of households of 2+ with a shared family computer, and how often the others use it
FAMILY_DEVICE_SHARE = 0.30
FAMILY_DEVICE_USE = 0.25


class Devices:
    """Each person's devices (1-3) and the cookie ids that rotate on each device."""

    def __init__(self, people: pd.DataFrame, rng: np.random.Generator):
        n = len(people)
        online = people["online_share"].to_numpy()
        self.n_dev = 1 + rng.binomial(2, np.clip(online, 0.05, 0.9))
        self.first = np.concatenate([[0], np.cumsum(self.n_dev)[:-1]])
        total = int(self.n_dev.sum())
        self.device_ids = hex_ids(rng, total, 8)
        self.cookie_life = rng.uniform(45, 420, total)
        self.cookie_phase = rng.uniform(0, 1, total)
        self.seed = int(rng.integers(2**31))
        self.n = n
        # some households share a family computer: the first device of the household's head
        hh = people["_hh"].to_numpy()
        rank = people["household_rank"].to_numpy()
        head = np.zeros(hh.max() + 1, dtype=np.int64)
        head[hh[rank == 0]] = np.flatnonzero(rank == 0)
        shares = (people["household_size"].to_numpy() > 1) & (
            rng.random(hh.max() + 1) < FAMILY_DEVICE_SHARE
        )[hh]
        self.family_device = np.where(shares & (rank > 0), self.first[head[hh]], -1)

    def device_index(self, person: np.ndarray, t: np.ndarray, stream: int = 0) -> np.ndarray:
        """Which device each event or order used: mostly the person's first, sometimes another
        of theirs, and in some households the family computer."""
        r = np.random.default_rng([self.seed, len(person), stream])
        main = r.random(len(person)) < 0.7
        other = r.integers(0, 1 << 30, len(person)) % self.n_dev[person]
        own = self.first[person] + np.where(main, 0, other)
        fam = self.family_device[person]
        return np.where((fam >= 0) & (r.random(len(person)) < FAMILY_DEVICE_USE), fam, own)

    def device_of(self, person: np.ndarray, t: np.ndarray) -> pa.Array:
        """The device id ``person`` used at time ``t``."""
        return pick(self.device_ids, self.device_index(person, t))

    def cookie_of(self, dev: np.ndarray, t: np.ndarray) -> pa.Array:
        """The cookie a device carried at time ``t``: renewed every ``cookie_life`` days."""
        epoch = np.floor(t / self.cookie_life[dev] + self.cookie_phase[dev]).astype(np.int64)
        return hex_of(hash64(dev.astype(np.int64) * 4096 + epoch, self.seed), 14)
