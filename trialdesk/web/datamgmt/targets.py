"""The records data management works on, addressed generically (contenttypes).

A target is any model instance with an ``allocation`` (the patient). Its *content* —
what a signature covers and what source-data verification checked — is the model's
``signed_content()`` when it has one, else every concrete field except the primary key
and automatic time stamps. The patient's casebook is every record of the models in
:data:`CASEBOOK_MODELS` that are installed (adverse events, casebook forms).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.http import Http404

from trialdesk.datamanagement.signatures import casebook_digest, record_digest
from trialdesk.web.randomization.models import Allocation

#: models whose records make up a patient's casebook ("app_label.Model")
CASEBOOK_MODELS = ("safety.AdverseEvent", "casebook.FormRecord")


def casebook_models() -> list[type[models.Model]]:
    found = []
    for label in CASEBOOK_MODELS:
        app_label, name = label.split(".")
        try:
            found.append(apps.get_model(app_label, name))
        except LookupError:
            continue
    return found


def target_label(obj: models.Model) -> str:
    """``app_label.model`` of a record, as used in URLs and the API."""
    return f"{obj._meta.app_label}.{obj._meta.model_name}"


def resolve(label: str, object_id: int | str) -> models.Model:
    """The record ``label`` (``safety.adverseevent``) number ``object_id``; 404 if none.

    Only models with an ``allocation`` (a patient's record) or Allocation itself (the
    casebook) can be targets.
    """
    try:
        app_label, model_name = label.lower().split(".")
        ct = ContentType.objects.get_by_natural_key(app_label, model_name)
    except (ValueError, ContentType.DoesNotExist):
        raise Http404(f"No record type '{label}'.") from None
    model = ct.model_class()
    if model is None or not (model is Allocation or _has_allocation(model)):
        raise Http404(f"'{label}' records cannot be queried, verified or signed.")
    try:
        return model._default_manager.get(pk=int(object_id))
    except (ValueError, model.DoesNotExist):
        raise Http404(f"No {label} record {object_id}.") from None


def _has_allocation(model: type[models.Model]) -> bool:
    try:
        field = model._meta.get_field("allocation")
    except Exception:  # FieldDoesNotExist
        return False
    return getattr(field, "related_model", None) is Allocation


def allocation_of(obj: models.Model) -> Allocation:
    return obj if isinstance(obj, Allocation) else obj.allocation  # type: ignore[attr-defined]


def content_of(obj: models.Model) -> dict[str, Any]:
    """What a signature or an SDV mark on ``obj`` covers (see the module docstring)."""
    method = getattr(obj, "signed_content", None)
    if callable(method):
        return method()
    skip = {obj._meta.pk.name}
    out = {}
    for f in obj._meta.concrete_fields:
        if f.name in skip or getattr(f, "auto_now", False) or getattr(f, "auto_now_add",
                                                                      False):
            continue
        out[f.attname] = getattr(obj, f.attname)
    return out


def digest_of(obj: models.Model) -> str:
    """The digest of a record, or for an Allocation the digest of the whole casebook."""
    if isinstance(obj, Allocation):
        return casebook_digest_of(casebook_records(obj))
    return record_digest(content_of(obj))


def casebook_digest_of(records: list[models.Model]) -> str:
    """The casebook digest over records already read (a page that reads many patients'
    records in one query computes each patient's digest from them)."""
    return casebook_digest({f"{target_label(r)}:{r.pk}": record_digest(content_of(r))
                            for r in records})


def casebook_records(allocation: Allocation) -> list[models.Model]:
    """Every record of the patient's casebook (adverse events, forms) in use, in a stable
    order. Records entered in error are not part of it, so marking one invalidates a
    casebook signature, as a new or changed record does."""
    records: list[models.Model] = []
    for model in casebook_models():
        rows = model._default_manager.filter(allocation=allocation)
        if any(f.name == "entered_in_error" for f in model._meta.concrete_fields):
            rows = rows.filter(entered_in_error=False)
        records += list(rows.order_by("pk"))
    return records


def field_names(obj: models.Model) -> set[str]:
    """Fields a query may name: the model's fields and the keys of a ``data`` JSON field."""
    names = {f.name for f in obj._meta.concrete_fields}
    data = getattr(obj, "data", None)
    if isinstance(data, dict):
        names |= {str(k) for k in data}
    return names


def content_type_of(obj: models.Model) -> ContentType:
    return ContentType.objects.get_for_model(obj, for_concrete_model=True)
