"""The seeded synthetic Russian-market customer world with ground truth (see the README ("The synthetic customer world"))."""

from cemlib.synth.config import BehaviourParams, DefectRates, NoiseRates, SynthConfig
from cemlib.synth.world import RECORD_ID, SOURCE_TABLES, SyntheticWorld, generate

__all__ = [
    "RECORD_ID",
    "SOURCE_TABLES",
    "BehaviourParams",
    "DefectRates",
    "NoiseRates",
    "SynthConfig",
    "SyntheticWorld",
    "generate",
]
