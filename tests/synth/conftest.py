"""A small world shared by the synth tests (generated once per session)."""

from __future__ import annotations

import pytest

from cemlib.synth import generate

N_PEOPLE = 4000
AS_OF = "2025-06-30"


@pytest.fixture(scope="session")
def world():
    return generate(n_people=N_PEOPLE, seed=7, as_of=AS_OF)


@pytest.fixture(scope="session")
def clean_world():
    return generate(n_people=N_PEOPLE, seed=7, as_of=AS_OF, defects=False)
