"""Trial design calculations without random numbers: rejection regions and exact power
of 2×2 tests (:mod:`~trialdesk.design.rejection`), sample sizes for binary and
time-to-event outcomes and their group-sequential inflation
(:mod:`~trialdesk.design.sample_size`). Group-sequential boundaries themselves are in
:mod:`trialdesk.analysis.boundaries`."""
