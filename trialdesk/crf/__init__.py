"""Case report forms: form definitions, the visit schedule, edit checks and SSC bundles.

Pure domain core (no Django): the web casebook, the API and any exporter read the
same definitions, so a value means the same thing everywhere.
"""
