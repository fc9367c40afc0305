"""Identity resolution: one profile per real person from records of many sources."""

from cemlib.identity.evaluate import evaluate
from cemlib.identity.golden import golden_records
from cemlib.identity.graph import ChainGuardClusterer
from cemlib.identity.model import SplinkModel
from cemlib.identity.registry import assign_ids, resolve_id, resolve_ids
from cemlib.identity.resolve import IdentityResolver, resolve
from cemlib.identity.roles import ROLES, load_roles, prepare_records
from cemlib.identity.rules import HubGuard, deterministic_links

__all__ = [
    "ROLES",
    "ChainGuardClusterer",
    "HubGuard",
    "IdentityResolver",
    "SplinkModel",
    "assign_ids",
    "deterministic_links",
    "evaluate",
    "golden_records",
    "load_roles",
    "prepare_records",
    "resolve",
    "resolve_id",
    "resolve_ids",
]
