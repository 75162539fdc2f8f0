"""Strata: the canonical key of a patient's stratification levels.

Allocation lists are kept per stratum and minimization balances per factor level, so a
patient's levels must map to one canonical string that is stable across versions of
TrialDesk (it is written into published allocation lists): factors in the protocol's
``randomization.stratify_by`` order, ``factor=level`` joined by ``|``, or ``"all"``
when the protocol does not stratify.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from trialdesk.errors import UnknownStratum
from trialdesk.protocol.schema import Protocol, StratificationFactor

#: the single stratum of a protocol without stratification
NO_STRATIFICATION = "all"


def stratification_factors(protocol: Protocol) -> list[StratificationFactor]:
    """The factors named by ``randomization.stratify_by``, in that order."""
    by_id = {factor.id: factor for factor in protocol.stratification_factors}
    return [by_id[name] for name in protocol.randomization.stratify_by]


def check_level(factor: StratificationFactor, level: object) -> str:
    """``level`` if it is a level of ``factor``; else UnknownStratum naming the valid ones."""
    valid = [lvl.id for lvl in factor.levels]
    if level is None or level == "":
        raise UnknownStratum(
            f"The level of stratification factor '{factor.id}' ({factor.label}) is missing; "
            f"enter one of: {', '.join(valid)}.", field=factor.id)
    if level not in valid:
        raise UnknownStratum(
            f"'{level}' is not a level of stratification factor '{factor.id}' "
            f"({factor.label}); valid levels: {', '.join(valid)}.", field=factor.id)
    return str(level)


def stratum_key(protocol: Protocol, levels: Mapping[str, str]) -> str:
    """The canonical stratum key for ``levels`` (factor id -> level id).

    Keys not named by ``stratify_by`` are ignored; a missing factor or an unknown level
    raises UnknownStratum, whose message lists the valid levels.
    """
    factors = stratification_factors(protocol)
    if not factors:
        return NO_STRATIFICATION
    return "|".join(f"{f.id}={check_level(f, levels.get(f.id))}" for f in factors)


def all_strata(protocol: Protocol) -> list[str]:
    """Every stratum key of the protocol (the cartesian product of the factors' levels)."""
    factors = stratification_factors(protocol)
    if not factors:
        return [NO_STRATIFICATION]
    combos = itertools.product(*[[f"{f.id}={lvl.id}" for lvl in f.levels] for f in factors])
    return ["|".join(combo) for combo in combos]


def stratum_levels(protocol: Protocol, key: str) -> dict[str, str]:
    """The inverse of :func:`stratum_key` (UnknownStratum for a key not of this protocol)."""
    if key == NO_STRATIFICATION and not protocol.randomization.stratify_by:
        return {}
    levels = dict(part.partition("=")[::2] for part in key.split("|"))
    if stratum_key(protocol, levels) != key:
        raise UnknownStratum(f"'{key}' is not a stratum of protocol {protocol.protocol_id}; "
                             f"strata: {', '.join(all_strata(protocol))}.", field="stratum")
    return levels


def levels_from_record(protocol: Protocol, record: Mapping[str, object]) -> dict[str, str]:
    """Stratification levels (factor id -> level) read from a screening record (field ->
    value); a factor whose field is empty is left out, so :func:`stratum_key` reports it."""
    levels: dict[str, str] = {}
    for factor in stratification_factors(protocol):
        value = record.get(factor.field)
        if value is not None and value != "":
            levels[factor.id] = str(value)
    return levels
