"""The JSON API (``/api/``): bearer tokens, the screening and randomization routes.

Every route calls the same use cases as the pages (:mod:`trialdesk.web.screening.services`,
:mod:`trialdesk.web.randomization.services`) and checks the same permission table
(:data:`trialdesk.web.accounts.permissions.PERMISSIONS`), site by site.
"""
