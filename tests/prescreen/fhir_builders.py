"""Small builders of FHIR R4 resources for the pre-screening tests (synthetic patients)."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def patient(pid: str, birth_date: str | None = "1970-05-01", gender: str = "female"):
    res: dict[str, Any] = {"resourceType": "Patient", "id": pid, "gender": gender}
    if birth_date:
        res["birthDate"] = birth_date
    return res


def obs(oid: str, pid: str, loinc: str, value: float, unit: str, at: str, *,
        status: str = "final", issued: str | None = None, updated: str | None = None):
    res: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": status,
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": at,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}
    if issued:
        res["issued"] = issued
    if updated:
        res["meta"] = {"lastUpdated": updated}
    return res


def pressor(mid: str, pid: str, rxnorm: str, rate: float, unit: str, start: str,
            end: str | None = None, status: str = "in-progress"):
    period = {"start": start} | ({"end": end} if end else {})
    return {"resourceType": "MedicationAdministration", "id": mid, "status": status,
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectivePeriod": period,
            "dosage": {"rateQuantity": {"value": rate, "unit": unit, "system": UCUM,
                                        "code": unit}}}


def transaction(*resources: dict[str, Any]):
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]}


NOREPI, DOBUTAMINE = "7512", "3616"
MAP, SBP, ANC, WBC, NEUT_PCT, LACTATE = "8478-0", "8480-6", "751-8", "6690-2", "770-8", "2524-7"
