"""Statistical analysis of the trial's outcomes (pure: numpy/scipy, no Django).

Secondary analyses, tables, CONSORT and the report start from an
:class:`AnalysisDataset` (every tidy table of :mod:`~trialdesk.analysis.tidy`, with one
content hash): :func:`analyze_secondary`, :mod:`~trialdesk.analysis.tables`,
:mod:`~trialdesk.analysis.consort`, :func:`trialdesk.analysis.report.build_report`.

Start from a :class:`SubjectsDataset` (a CSV or database rows: subject, arm, time to
death or censoring, event) and call :func:`analyze_primary`; or use the parts:
:func:`analyze_binary` (mortality at a day, 2×2 tables), :func:`analyze_survival`
(Kaplan–Meier, log-rank, Cox), and the array-level :func:`kaplan_meier`,
:func:`logrank_test`, :func:`cox_ph`. Results are frozen dataclasses with
``to_dict()`` (JSON-able) and a readable ``str()``; statistical caveats are
:class:`StatisticalWarning` objects in each result's ``warnings`` tuple.
Conventions follow R (``survival``, ``stats``); see each module's docstring.
"""

from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.analysis.binary import BinaryAnalysis, analyze_binary
from trialdesk.analysis.cox import CoxResult, cox_ph
from trialdesk.analysis.daily import DailyDataset
from trialdesk.analysis.dataset import SubjectsDataset
from trialdesk.analysis.kaplan_meier import KaplanMeier, kaplan_meier
from trialdesk.analysis.primary import PrimaryAnalysis, analyze_primary
from trialdesk.analysis.results import Estimate, TestResult
from trialdesk.analysis.secondary import SecondaryAnalysis, analyze_secondary
from trialdesk.analysis.survival import (
    LogRankTest,
    SurvivalAnalysis,
    analyze_survival,
    logrank_test,
)
from trialdesk.analysis.warnings import StatisticalWarning

__all__ = ["AnalysisDataset", "BinaryAnalysis", "CoxResult", "DailyDataset", "Estimate",
           "KaplanMeier", "LogRankTest", "PrimaryAnalysis", "SecondaryAnalysis",
           "StatisticalWarning", "SubjectsDataset", "SurvivalAnalysis", "TestResult",
           "analyze_binary", "analyze_primary", "analyze_secondary", "analyze_survival",
           "cox_ph", "kaplan_meier", "logrank_test"]
