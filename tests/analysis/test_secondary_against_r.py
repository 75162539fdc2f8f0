"""Secondary analyses against R on the same data, in the test run.

* SOFA mixed model: lme4/lmerTest ``lmer(sofa ~ arm * day + (1 | subject), REML = TRUE)``
  with Satterthwaite df (``summary``, ``contest``), BOBYQA's tolerance tightened
  (``rhoend = 2e-11``; our Brent search stops at 1e-11 in log θ). Estimates and SEs to
  1e-6 relative; df to 1e-4 relative
  (lmerTest differentiates the deviance numerically with Richardson extrapolation, we
  with central differences).
* Cytokine change on the log scale: R ``t.test`` (Welch) on log(day d / day 0).
* ΔSOFA and free days: Wilcoxon rank-sum p-value of R ``wilcox.test`` (normal
  approximation with ties) to 1e-10; ΔSOFA and free days themselves computed in R from
  the raw rows by its own code.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tests.analysis.rscript import run_r
from trialdesk.analysis import AnalysisDataset, analyze_secondary
from trialdesk.analysis.synthetic import synthetic_trial
from trialdesk.protocol import load_protocol

from .test_cli_analyze import RUMCESS

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lmerTest))
s <- read.csv(subjects_csv, stringsAsFactors = FALSE)
d <- read.csv(daily_csv, stringsAsFactors = FALSE)
d$arm <- factor(s$arm[match(d$subject_id, s$subject_id)], levels = c("control", "msc"))
w <- d[d$day <= 7 & !is.na(d$sofa_total), ]
w$nocoag <- w$sofa_total - w$sofa_coagulation
for (y in c("sofa_total", "nocoag")) {
  m <- lmer(as.formula(paste(y, "~ arm * day + (1 | subject_id)")), data = w, REML = TRUE,
            control = lmerControl(optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11)))
  cf <- summary(m)$coefficients
  emit(paste0(y, "_est"), cf[, "Estimate"]); emit(paste0(y, "_se"), cf[, "Std. Error"])
  emit(paste0(y, "_df"), cf[, "df"]); emit(paste0(y, "_p"), cf[, "Pr(>|t|)"])
  ct <- contest(m, c(0, 1, 0, 7), joint = FALSE)
  emit(paste0(y, "_d7"), c(ct$Estimate, ct[["Std. Error"]], ct$df))
  emit(paste0(y, "_sd"), c(getME(m, "theta") * sigma(m), sigma(m)))
}
# Delta SOFA: last value on days 1-7 minus day 0
base <- w[w$day == 0, c("subject_id", "sofa_total")]
later <- w[w$day >= 1, ]
later <- later[order(later$subject_id, later$day), ]
last <- later[!duplicated(later$subject_id, fromLast = TRUE), c("subject_id", "sofa_total")]
dd <- merge(base, last, by = "subject_id")
dd$delta <- dd$sofa_total.y - dd$sofa_total.x
dd$arm <- s$arm[match(dd$subject_id, s$subject_id)]
r <- wilcox.test(dd$delta[dd$arm == "msc"], dd$delta[dd$arm == "control"], exact = FALSE)
emit("delta_p", r$p.value); emit("delta_n", nrow(dd))
# IL-6 day 7 vs day 0 on the log scale, Welch
il <- d[!is.na(d$il6_pg_per_ml), ]
b0 <- il[il$day == 0, ]; b7 <- il[il$day == 7, ]
j <- merge(b0, b7, by = "subject_id")
j$lc <- log(j$il6_pg_per_ml.y / j$il6_pg_per_ml.x)
j$arm <- s$arm[match(j$subject_id, s$subject_id)]
tt <- t.test(j$lc[j$arm == "msc"], j$lc[j$arm == "control"])
emit("il6_d7", c(exp(tt$estimate[1] - tt$estimate[2]), exp(tt$conf.int), tt$p.value,
                 tt$parameter))
# vasopressor-free days to day 28
vfd <- sapply(s$subject_id, function(id) {
  i <- which(s$subject_id == id)
  if (s$event[i] == 1 && s$time[i] <= 28) return(0)
  if (s$event[i] == 0 && s$time[i] < 28) return(NA)
  x <- d[d$subject_id == id & d$day >= 1 & d$day <= 28, ]
  if (!any(d$subject_id == id)) return(NA)
  28 - sum(x$on_vasopressor == 1, na.rm = TRUE)
})
ok <- !is.na(vfd)
r <- wilcox.test(vfd[ok & s$arm == "msc"], vfd[ok & s$arm == "control"], exact = FALSE)
emit("vfd_p", r$p.value); emit("vfd_sum", c(sum(vfd[ok & s$arm == "msc"]),
                                            sum(vfd[ok & s$arm == "control"])))
"""


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(RUMCESS)


@pytest.fixture(scope="module")
def computed(tmp_path_factory, protocol):
    tables = synthetic_trial(60, seed=7)
    subjects = tables.pop("subjects")
    ds = AnalysisDataset.from_frames(subjects, protocol=protocol, **tables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = analyze_secondary(ds, protocol)
    daily = tables["daily"].replace({np.nan: None})
    r = run_r(R_SCRIPT, tmp_path_factory.mktemp("secondary"),
              subjects=subjects.to_dict("records"),
              daily=[{k: ("NA" if v is None else v) for k, v in row.items()}
                     for row in daily.to_dict("records")])
    return ours, r


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize(("outcome", "key"), [("sofa_total", "sofa_total"),
                                              ("sofa_without_coagulation", "nocoag")])
def test_sofa_mixed_model_matches_lmertest(computed, outcome, key):
    ours, r = computed
    (model,) = [m for m in ours.sofa_models if m.outcome == outcome]
    fit = model.fit
    assert fit.df_method == "satterthwaite"  # the protocol's analysis.mixed_model_df
    assert [c.name for c in fit.coefficients] == ["(Intercept)", "armmsc", "day",
                                                   "armmsc:day"]
    for c, est, se, df, p in zip(fit.coefficients, r[f"{key}_est"], r[f"{key}_se"],
                                 r[f"{key}_df"], r[f"{key}_p"], strict=True):
        assert _rel(c.estimate, est) < 1e-6, (c.name, c.estimate, est)
        assert _rel(c.se, se) < 1e-6, (c.name, c.se, se)
        assert _rel(c.df, df) < 1e-4, (c.name, c.df, df)
        assert c.p_value == pytest.approx(p, rel=1e-4, abs=1e-12)
    (d7,) = fit.contrasts
    assert d7.name == "armmsc at day 7"
    assert _rel(d7.estimate, r[f"{key}_d7"][0]) < 1e-6
    assert _rel(d7.se, r[f"{key}_d7"][1]) < 1e-6
    assert _rel(d7.df, r[f"{key}_d7"][2]) < 1e-4
    assert _rel(fit.sd_intercept, r[f"{key}_sd"][0]) < 1e-5
    assert _rel(fit.sigma, r[f"{key}_sd"][1]) < 1e-6


def test_delta_sofa_rank_sum_matches_r(computed):
    ours, r = computed
    delta = next(d for d in ours.delta_sofa if d.outcome == "delta_sofa_total")
    assert sum(a.n for a in delta.arms) == int(r["delta_n"][0])
    assert delta.rank_sum.p_value == pytest.approx(r["delta_p"][0], rel=1e-10)


def test_il6_log_change_ratio_matches_r_welch_t_test(computed):
    ours, r = computed
    (m,) = [m for m in ours.markers if m.marker == "il6_pg_per_ml" and m.day == 7]
    ratio, lo, hi, p, df = r["il6_d7"]
    assert m.ratio.estimate == pytest.approx(ratio, rel=1e-10)
    assert (m.ratio.lower, m.ratio.upper) == pytest.approx((lo, hi), rel=1e-10)
    assert m.p_value == pytest.approx(p, rel=1e-8)
    assert m.df == pytest.approx(df, rel=1e-10)


def test_vasopressor_free_days_match_r(computed):
    ours, r = computed
    (vfd,) = [f for f in ours.free_days if f.outcome == "vasopressor_free_days"]
    ref, trt = vfd.arms
    assert trt.mean * trt.n == pytest.approx(r["vfd_sum"][0])
    assert ref.mean * ref.n == pytest.approx(r["vfd_sum"][1])
    assert vfd.rank_sum.p_value == pytest.approx(r["vfd_p"][0], rel=1e-10)
    assert math.isfinite(vfd.rank_sum.shift)
