"""Allocation of patients to arms: strata, pre-generated allocation lists (complete
randomization, permuted blocks, emergency envelopes), Pocock–Simon minimization, and
the simulation that compares designs before a trial starts.

Pure domain code (no Django): the web layer stores lists, counts and decisions.
"""

from trialdesk.randomization.evaluation import (
    DesignEvaluation,
    Distribution,
    exact_block_predictability,
    simulate_design,
)
from trialdesk.randomization.minimization import (
    MarginalCounts,
    MinimizationDecision,
    imbalance_scores,
    minimize,
)
from trialdesk.randomization.sequence import (
    AllocationList,
    ListEntry,
    generate_emergency_lists,
    generate_list,
)
from trialdesk.randomization.strata import (
    NO_STRATIFICATION,
    all_strata,
    levels_from_record,
    stratification_factors,
    stratum_key,
    stratum_levels,
)

__all__ = [
    "NO_STRATIFICATION",
    "AllocationList",
    "DesignEvaluation",
    "Distribution",
    "ListEntry",
    "MarginalCounts",
    "MinimizationDecision",
    "all_strata",
    "exact_block_predictability",
    "generate_emergency_lists",
    "generate_list",
    "imbalance_scores",
    "levels_from_record",
    "minimize",
    "simulate_design",
    "stratification_factors",
    "stratum_key",
    "stratum_levels",
]
