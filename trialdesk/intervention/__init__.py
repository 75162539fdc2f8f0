"""The MSC intervention: product release, dose given and automatic protocol deviations.

Pure domain core (no Django). Reads the protocol's ``intervention`` section.
"""
