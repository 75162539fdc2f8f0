"""The analysis agrees with R on the same data, computed by Rscript in this test run.

Every test writes its data to a temporary CSV, runs an R script on it (R 4.2,
``survival`` 3.5, ``epitools``) and compares to a relative tolerance of 1e-6 unless its
docstring says otherwise. Without Rscript these tests fail: ``.ci/run`` installs R.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.analysis.helpers import counts_dataset
from tests.analysis.rscript import lung_records, run_r
from trialdesk.analysis import SubjectsDataset, analyze_binary, cox_ph, kaplan_meier
from trialdesk.analysis.survival import logrank_test

RTOL = 1e-6

KM_SCRIPT = r"""
d <- read.csv(km_csv, colClasses = c(arm = "character"))
for (ct in c("log", "log-log", "plain")) {
  for (a in c("ALL", sort(unique(d$arm)))) {
    s <- if (a == "ALL") d else d[d$arm == a, ]
    f <- survfit(Surv(time, event) ~ 1, data = s, conf.type = ct)
    k <- paste0(ct, "|", a, "|")
    emit(paste0(k, "time"), f$time); emit(paste0(k, "n.risk"), f$n.risk)
    emit(paste0(k, "n.event"), f$n.event); emit(paste0(k, "n.censor"), f$n.censor)
    emit(paste0(k, "surv"), f$surv); emit(paste0(k, "std.err"), f$std.err)
    emit(paste0(k, "lower"), f$lower); emit(paste0(k, "upper"), f$upper)
    emit(paste0(k, "se.surv"), summary(f, censored = TRUE)$std.err)
    q <- quantile(f, 0.5)
    emit(paste0(k, "median"), c(q$quantile, q$lower, q$upper))
    at <- summary(f, times = AT_TIME)
    emit(paste0(k, "at"), c(at$surv, at$lower, at$upper))
  }
}
"""


def _km_data_noisy() -> list[dict[str, Any]]:
    """Two arms, times on a 0.1-day grid written with rounding noise (0.1 + 0.2 is not
    0.3 in floating point), many ties, censorings at death times."""
    rng = np.random.default_rng(20240601)
    rows = []
    for i in range(120):
        k = int(rng.integers(1, 40))
        noisy = sum([0.1] * k) if i % 2 else k / 10
        rows.append({"subject_id": f"S{i}", "arm": "a" if i % 3 else "b", "time": noisy,
                     "event": int(rng.random() < 0.7)})
    return rows


def _km_data_toy() -> list[dict[str, Any]]:
    """Arm a: times 1..6, all deaths (R median 3.5). Arm b: deaths at 1 and 2, censored at
    3 and 4: S stays 0.5 to the end (R: midpoint of 2 and the last time, 3)."""
    a = [{"subject_id": f"a{t}", "arm": "a", "time": t, "event": 1} for t in range(1, 7)]
    b = [{"subject_id": f"b{t}", "arm": "b", "time": t, "event": int(t <= 2)}
         for t in range(1, 5)]
    return a + b


@pytest.mark.parametrize(("name", "rows", "at_time"), [
    ("lung", lung_records(), 365.0),
    ("noisy", _km_data_noisy(), 2.0),
    ("toy", _km_data_toy(), 2.5),
])
def test_kaplan_meier_matches_r_survfit(tmp_path, name, rows, at_time):
    """R: survfit(Surv(time, event) ~ 1, conf.type = "log" | "log-log" | "plain") per arm
    and overall: $time, $n.risk, $n.event, $n.censor, $surv, $std.err (SE of −log S),
    $lower, $upper, summary(censored = TRUE)$std.err (SE of S), quantile(f, 0.5) (median
    and its CI) and summary(f, times = t). Relative tolerance 1e-6; NA ⇔ nan."""
    r = run_r(KM_SCRIPT.replace("AT_TIME", repr(at_time)), tmp_path, km=rows)
    time = np.array([row["time"] for row in rows], dtype=float)
    event = np.array([row["event"] for row in rows])
    arm = np.array([str(row["arm"]) for row in rows])
    for conf_type in ("log", "log-log", "plain"):
        for a in ["ALL", *sorted(set(arm))]:
            sel = np.ones(len(arm), bool) if a == "ALL" else arm == a
            km = kaplan_meier(time[sel], event[sel], conf_type=conf_type)
            key = f"{conf_type}|{a}|"
            ours = {"time": km.time, "n.risk": km.n_risk, "n.event": km.n_event,
                    "n.censor": km.n_censor, "surv": km.survival, "std.err": km.std_err_log,
                    "lower": km.lower, "upper": km.upper, "se.surv": km.std_err,
                    "median": np.array(km.median), "at": np.array(km.at(at_time))}
            for field, value in ours.items():
                np.testing.assert_allclose(value, r[key + field], rtol=RTOL, atol=1e-12,
                                           err_msg=f"{name} {key}{field}")


LOGRANK_COX_SCRIPT = r"""
d <- read.csv(sv_csv, colClasses = c(arm = "character", stratum = "character"))
d$arm <- factor(d$arm, levels = ARMS)
for (st in c("plain", "strata")) {
  fml <- if (st == "plain") Surv(time, event) ~ arm else Surv(time, event) ~ arm + strata(stratum)
  lr <- survdiff(fml, data = d)
  emit(paste0(st, "|lr|chisq"), lr$chisq)
  emit(paste0(st, "|lr|obs"), rowSums(as.matrix(lr$obs)))
  emit(paste0(st, "|lr|exp"), rowSums(as.matrix(lr$exp)))
  emit(paste0(st, "|lr|var"), lr$var)
  for (ties in c("efron", "breslow")) {
    f <- coxph(fml, data = d, ties = ties)
    s <- summary(f)
    k <- paste0(st, "|", ties, "|")
    emit(paste0(k, "coef"), coef(f)); emit(paste0(k, "se"), sqrt(diag(vcov(f))))
    emit(paste0(k, "hr"), s$conf.int[, 1]); emit(paste0(k, "lower"), s$conf.int[, 3])
    emit(paste0(k, "upper"), s$conf.int[, 4]); emit(paste0(k, "p"), s$coefficients[, 5])
    emit(paste0(k, "loglik"), f$loglik)
    # summary()'s waldtest is rounded to 2 decimals: take the unrounded fields
    emit(paste0(k, "tests"), c(2 * diff(f$loglik), f$wald.test, f$score))
  }
}
"""


def _lung_by_ecog() -> list[dict[str, Any]]:
    """lung with three 'arms' from ph.ecog (0, 1, 2 or more; missing dropped)."""
    import csv

    from tests.analysis.rscript import LUNG

    with LUNG.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["ph.ecog"] != ""]
    return [{"subject_id": f"E{i}", "arm": f"e{min(int(float(r['ph.ecog'])), 2)}",
             "time": float(r["time"]), "event": int(r["status"] == "2"),
             "stratum": "f" if r["sex"] == "2" else "m"} for i, r in enumerate(rows)]


@pytest.mark.parametrize(("name", "rows", "arms"), [
    ("lung by sex, strata age group", lung_records(strata=True), ("1", "2")),
    ("lung by ecog, strata sex", _lung_by_ecog(), ("e0", "e1", "e2")),
])
def test_logrank_and_cox_match_r(tmp_path, name, rows, arms):
    """R: survdiff(Surv(time, event) ~ arm [+ strata(stratum)]) ($chisq, $obs, $exp, $var)
    and coxph(same, ties = "efron" | "breslow") (coef, SE, HR and its 95% CI, Wald p,
    $loglik, likelihood-ratio 2·diff($loglik), $wald.test and $score). Relative tolerance
    1e-6."""
    levels = "c(" + ", ".join(f'"{a}"' for a in arms) + ")"
    r = run_r(LOGRANK_COX_SCRIPT.replace("ARMS", levels), tmp_path, sv=rows)
    ds = SubjectsDataset.from_records(rows)
    for st in ("plain", "strata"):
        strata = np.array(ds.strata, dtype=object) if st == "strata" else None
        lr = logrank_test(ds.time, ds.event, ds.arm, arms, strata=strata)
        np.testing.assert_allclose(lr.chisq, r[f"{st}|lr|chisq"][0], rtol=RTOL)
        np.testing.assert_allclose(lr.observed, r[f"{st}|lr|obs"], rtol=RTOL)
        np.testing.assert_allclose(lr.expected, r[f"{st}|lr|exp"], rtol=RTOL)
        np.testing.assert_allclose(lr.variance.ravel(), r[f"{st}|lr|var"], rtol=RTOL)
        for ties in ("efron", "breslow"):
            cox = cox_ph(ds.time, ds.event, ds.arm, arms, strata=strata, ties=ties)
            k = f"{st}|{ties}|"
            c = cox.coefficients
            for field, ours in (("coef", [x.coef for x in c]), ("se", [x.se for x in c]),
                                ("hr", [x.hazard_ratio for x in c]),
                                ("lower", [x.lower for x in c]),
                                ("upper", [x.upper for x in c]),
                                ("p", [x.p_value for x in c]),
                                ("loglik", [cox.loglik_null, cox.loglik]),
                                ("tests", [cox.likelihood_ratio.statistic,
                                           cox.wald.statistic, cox.score.statistic])):
                np.testing.assert_allclose(ours, r[k + field], rtol=RTOL,
                                           err_msg=f"{name} {k}{field}")


TWO_BY_TWO_SCRIPT = r"""
suppressPackageStartupMessages(library(epitools))
d <- read.csv(tables_csv)
# Miettinen-Nurminen written out: restricted MLE by solving the score equation of the
# constrained likelihood with uniroot, then uniroot on the score statistic (no closed form)
mn_stat <- function(x1, n1, x2, n2, delta) {
  lo <- max(0, -delta); hi <- min(1, 1 - delta)
  dl <- function(q2) { q1 <- q2 + delta
    (if (x1 > 0) x1 / q1 else 0) - (if (n1 - x1 > 0) (n1 - x1) / (1 - q1) else 0) +
    (if (x2 > 0) x2 / q2 else 0) - (if (n2 - x2 > 0) (n2 - x2) / (1 - q2) else 0) }
  e <- 1e-13
  q2 <- if (dl(lo + e) <= 0) lo else if (dl(hi - e) >= 0) hi else
    uniroot(dl, c(lo + e, hi - e), tol = 1e-15)$root
  q1 <- q2 + delta; N <- n1 + n2
  v <- (q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2) * N / (N - 1)
  num <- (x1 / n1 - x2 / n2 - delta)^2
  if (v <= 0) return(if (num < 1e-30) 0 else Inf)  # degenerate: all deaths / no deaths
  num / v
}
mn_ci <- function(x1, n1, x2, n2, conf = 0.95) {
  d <- x1 / n1 - x2 / n2; crit <- qnorm(1 - (1 - conf) / 2)^2
  f <- function(delta) mn_stat(x1, n1, x2, n2, delta) - crit
  e <- 1e-10
  lower <- if (d <= -1 + e || f(-1 + e) <= 0) -1 else uniroot(f, c(-1 + e, d), tol = 1e-14)$root
  upper <- if (d >= 1 - e || f(1 - e) <= 0) 1 else uniroot(f, c(d, 1 - e), tol = 1e-14)$root
  c(d, lower, upper)
}
for (i in seq_len(nrow(d))) {
  x1 <- d$x1[i]; n1 <- d$n1[i]; x2 <- d$x2[i]; n2 <- d$n2[i]; k <- paste0(i, "|")
  emit(paste0(k, "mn"), mn_ci(x1, n1, x2, n2))
  w1 <- suppressWarnings(prop.test(x1, n1, correct = FALSE)$conf.int)
  w2 <- suppressWarnings(prop.test(x2, n2, correct = FALSE)$conf.int)
  p1 <- x1 / n1; p2 <- x2 / n2
  emit(paste0(k, "newcombe"), c(p1 - p2, p1 - p2 - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2),
                                p1 - p2 + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2)))
  tab <- matrix(c(x1, n1 - x1, x2, n2 - x2), 2, byrow = TRUE)
  ft <- fisher.test(tab)
  emit(paste0(k, "fisher"), c(ft$p.value, fisher.test(tab, alternative = "less")$p.value,
                              ft$estimate, ft$conf.int))
  if (all(rowSums(tab) > 0) && all(colSums(tab) > 0)) {
    for (cc in c(FALSE, TRUE)) {
      ch <- suppressWarnings(chisq.test(tab, correct = cc))
      pt <- suppressWarnings(prop.test(c(x1, x2), c(n1, n2), correct = cc,
                                       alternative = "less"))
      emit(paste0(k, "chisq", cc), c(ch$statistic, ch$p.value, pt$p.value))
    }
  }
  if (all(tab > 0)) {
    epi <- rbind(c(n2 - x2, x2), c(n1 - x1, x1))  # rows: reference, treatment; col 2 = died
    emit(paste0(k, "rr"), riskratio(epi, method = "wald")$measure[2, ])
    emit(paste0(k, "or"), oddsratio(epi, method = "wald")$measure[2, ])
  }
}
"""

#: (treatment deaths, n, reference deaths, n): RUMCESS, moderate, zero cells, boundaries
TABLES = [(6, 15, 12, 15), (48, 80, 56, 70), (3, 25, 9, 22), (0, 10, 5, 10),
          (10, 10, 0, 10), (0, 20, 0, 20), (1, 30, 8, 25), (17, 40, 17, 40), (9, 12, 2, 13)]


@pytest.mark.filterwarnings("ignore::trialdesk.analysis.warnings.StatisticalWarning")
def test_two_by_two_matches_r(tmp_path):
    """R, per table: Miettinen–Nurminen CI written in R (restricted MLE by uniroot on the
    constrained score equation, limits by uniroot on the statistic; tolerance 1e-6);
    Newcombe from prop.test(correct = FALSE)$conf.int Wilson intervals (1e-6);
    fisher.test two-sided and alternative = "less" p (1e-6) and conditional MLE odds ratio
    with its CI (R finds them by uniroot/optimize at default tolerances, ~1e-4 absolute:
    tolerance 1e-3 relative + 2e-4 absolute; not compared when nobody or
    everybody died: R then reports 0, we report it as undefined); chisq.test(correct = FALSE |
    TRUE) statistic and p, prop.test(alternative = "less") one-sided p (1e-6);
    epitools riskratio/oddsratio(method = "wald") for tables without zeros (1e-6)."""
    rows = [{"x1": a, "n1": b, "x2": c, "n2": d} for a, b, c, d in TABLES]
    r = run_r(TWO_BY_TWO_SCRIPT, tmp_path, tables=rows)
    for i, (x1, n1, x2, n2) in enumerate(TABLES, 1):
        comp = analyze_binary(counts_dataset(x1, n1, x2, n2)).comparisons[0]
        k, where = f"{i}|", f"table {x1}/{n1} vs {x2}/{n2}"

        def close(name, method, expected, rtol=RTOL, atol=1e-9, comp=comp, where=where):
            e = comp.estimate(name, method)
            np.testing.assert_allclose([e.estimate, e.lower, e.upper], expected, rtol=rtol,
                                       atol=atol, err_msg=f"{where} {name} {method}")

        close("risk_difference", "miettinen_nurminen", r[k + "mn"])
        close("risk_difference", "newcombe", r[k + "newcombe"])
        fisher = comp.test("fisher_exact")
        np.testing.assert_allclose([fisher.p_value, fisher.p_one_sided], r[k + "fisher"][:2],
                                   rtol=RTOL, err_msg=where)
        if (x1 + x2) % (n1 + n2):  # both outcomes occur; else R says 0, we say undefined
            close("odds_ratio", "conditional_mle_exact", r[k + "fisher"][2:], rtol=1e-3,
                  atol=2e-4)
        if k + "chisqFALSE" in r:
            for name, cc in (("chi_square", "FALSE"), ("chi_square_cc", "TRUE")):
                t = comp.test(name)
                np.testing.assert_allclose([t.statistic, t.p_value, t.p_one_sided],
                                           r[k + "chisq" + cc], rtol=RTOL,
                                           err_msg=f"{where} {name}")
        if k + "rr" in r:
            close("relative_risk", "log", r[k + "rr"])
            close("odds_ratio", "woolf", r[k + "or"])

