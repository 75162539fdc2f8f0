"""The protocol's MSC dose for one patient: the clinical dose rule with the protocol's
range, target and weight basis filled in (one function for the CLI, web and API)."""

from __future__ import annotations

from trialdesk.clinical.dosing import MscDose, compute_msc_dose, dosing_weight_kg
from trialdesk.protocol.schema import Protocol


def protocol_dose(
    protocol: Protocol,
    weight_kg: float,
    *,
    cells_per_kg: float | None = None,
    concentration_cells_per_ml: float | None = None,
    height_cm: float | None = None,
    sex: str | None = None,
) -> MscDose:
    """Target and allowed cells for ``weight_kg`` under ``protocol``'s intervention.

    ``cells_per_kg`` overrides the protocol's target (it must stay within the
    protocol range); height and sex are needed when the protocol doses by
    predicted body weight.
    """
    spec = protocol.intervention
    weight = dosing_weight_kg(
        weight_kg,
        basis=spec.weight_basis,
        height_cm=height_cm,
        sex=sex,
        plausible_range_kg=spec.plausible_weight_kg,
    )
    return compute_msc_dose(
        weight,
        target_cells_per_kg=(spec.dose.target_cells_per_kg if cells_per_kg is None
                             else cells_per_kg),
        min_cells_per_kg=spec.dose.min_cells_per_kg,
        max_cells_per_kg=spec.dose.max_cells_per_kg,
        concentration_cells_per_ml=concentration_cells_per_ml,
    )
