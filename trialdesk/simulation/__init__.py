"""Virtual patients and whole-design simulation for trial planning, training and demos.

Pure domain code (no Django): :mod:`~trialdesk.simulation.patients` makes RUMCESS-like
virtual patients (screening record, daily SOFA inputs, cytokines, death, data-entry
errors); :mod:`~trialdesk.simulation.operating` simulates whole trials of a protocol's
design (randomization, interim looks, final test) and gives the exact values beside
the Monte-Carlo ones. Sample sizes are in :mod:`trialdesk.design`.
"""
