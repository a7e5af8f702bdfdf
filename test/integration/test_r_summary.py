"""ml_coefficients against R's summary(lm(...)) / summary(glm(..., family = binomial)) (issue 12).

Each case builds a data frame in R (datasets shipped with R, and scikit-learn's diabetes as
load_datasets.py reads it), writes its rows to a file that becomes the table pg_ml trains on
(test_size => 0, so both fit the very same rows), and prints R's coefficient table,
confidence intervals (confint for lm, confint.default, Wald, for glm) and model-level
figures with 17 digits. Everything must agree to 1e-6 relative. Categorical columns are R
factors whose levels are sorted as pg_ml sorts them (byte order), trained with
preprocess {"encoding": "drop_first"}: R's treatment contrasts. Rows with NA are dropped by
lm / glm (na.omit) and by preprocess {"nulls": "drop"}.

Skipped, saying so, when Rscript is not installed.
"""
import csv
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from pgml_test import PgmlTestCase, dataset, rel_close

RSCRIPT = shutil.which("Rscript") or ("/usr/bin/Rscript" if os.path.exists("/usr/bin/Rscript") else None)
REL = 1e-6
WORST = {}  # case -> the largest relative difference to R

# R code that leaves the data frame `d` (the features in table order, the target last) and the
# formula's family; factor() columns are the categorical ones
R_FACTOR = "sf <- function(x) { x <- as.character(x); factor(x, levels = sort(unique(x[!is.na(x)]), method = 'radix')) }\n"

R_FIT = r"""
fam <- Sys.getenv("PGML_FAMILY")
write.table(d, file = Sys.getenv("PGML_DATA"), sep = ",", na = "", row.names = FALSE, col.names = FALSE,
            quote = FALSE)
target <- names(d)[ncol(d)]
f <- as.formula(paste(target, "~ ."))
out <- file(Sys.getenv("PGML_OUT"), "w")
g <- function(x) sprintf("%.17g", x)
if (fam == "gaussian") {
    fit <- lm(f, data = d)
    s <- summary(fit)
    ci <- confint(fit)
    fs <- s$fstatistic
    writeLines(paste("model", c("sigma", "r2", "adj_r2", "f_statistic", "f_p_value", "log_likelihood", "aic", "bic",
                                "df_residual", "n"),
                     g(c(s$sigma, s$r.squared, s$adj.r.squared, fs[1], pf(fs[1], fs[2], fs[3], lower.tail = FALSE),
                         as.numeric(logLik(fit)), AIC(fit), BIC(fit), fit$df.residual, nobs(fit))), sep = ","), out)
} else {
    # glm's standard errors use the IRLS weights of its last iteration, one step before its
    # estimates: refitted from its own converged estimates, the weights are those at the maximum
    # (with the default epsilon = 1e-8 they can be off by ~1e-7 relative)
    fit <- glm(f, data = d, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
    fit <- glm(f, data = d, family = binomial, start = coef(fit), control = glm.control(epsilon = 1e-14, maxit = 100))
    s <- summary(fit)
    ci <- confint.default(fit)
    writeLines(paste("model", c("deviance", "null_deviance", "log_likelihood", "aic", "bic", "df_residual", "n"),
                     g(c(fit$deviance, fit$null.deviance, as.numeric(logLik(fit)), AIC(fit), BIC(fit),
                         fit$df.residual, nobs(fit))), sep = ","), out)
}
cf <- coef(s)
for (i in seq_len(nrow(cf)))
    writeLines(paste("coef", i, paste(g(c(cf[i, 1:4], ci[i, ])), collapse = ","), sep = ","), out)
close(out)
"""


def run_r(frame_code, family):
    """Runs R on a data frame; returns (rows as lists of strings or None, model figures, coefficient rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = (os.path.join(tmp, n) for n in ("data.csv", "out.csv", "fit.R"))
        with open(script, "w") as f:
            f.write(R_FACTOR + frame_code + "\n" + R_FIT)
        env = dict(os.environ, PGML_DATA=data, PGML_OUT=out, PGML_FAMILY=family, LC_ALL="C")
        subprocess.run([RSCRIPT, "--vanilla", script], check=True, env=env, capture_output=True, timeout=120)
        with open(data) as f:
            rows = [[v if v != "" else None for v in r] for r in csv.reader(f)]
        model, coefs = {}, []
        with open(out) as f:
            for r in csv.reader(f):
                if r[0] == "model":
                    model[r[1]] = float(r[2])
                else:
                    coefs.append([float(v) for v in r[2:]])
        return rows, model, coefs


@unittest.skipIf(RSCRIPT is None, "Rscript is not installed (Debian: r-base-core): nothing to compare with")
class RSummaryTest(PgmlTestCase):
    @classmethod
    def tearDownClass(cls):
        if WORST:
            print("\n\nml_coefficients vs R: largest relative difference per case")
            for case, d in sorted(WORST.items()):
                print(f"  {case:<45} {d:.2e}")

    def note(self, got, want):
        d = abs(got - want) / max(abs(got), abs(want), 1e-300)
        WORST[self._testMethodName] = max(WORST.get(self._testMethodName, 0.0), d)

    def fit_and_compare(self, columns, frame_code, family, algorithm, preprocess=None, hyperparams=None,
                        expect_terms=None, dropped_null=None):
        rows, rmodel, rcoefs = run_r(frame_code, family)
        table = self.table(columns, rows, prefix="rsum")
        model = self.model_name("rsum")
        target = columns[-1][0]
        self.one("SELECT * FROM ml_train(%s, %s, algorithm => %s, name => %s, test_size => 0, "
                 "preprocess => %s::jsonb, hyperparams => %s::jsonb)",
                 (table, target, algorithm, model, json.dumps(preprocess or {}), json.dumps(hyperparams or {})))
        got = self.all("SELECT * FROM ml_coefficients(%s)", (model,))
        self.assertEqual(len(got), len(rcoefs), [g["term"] for g in got])
        if expect_terms is not None:
            self.assertEqual([g["term"] for g in got], expect_terms)
        keys = ["estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]
        for g, r in zip(got, rcoefs):
            for k, want in zip(keys, r):
                self.note(g[k], want)
                self.assertTrue(rel_close(g[k], want, REL, abs_floor=1e-300),
                                f"{g['term']} {k}: pg_ml {g[k]!r}, R {want!r}")
        report = self.scalar("SELECT report FROM ml_versions WHERE model = %s", (model,))
        inf = report["inference"]
        for k, want in rmodel.items():
            self.note(inf[k], want)
            self.assertTrue(rel_close(inf[k], want, REL), f"{k}: pg_ml {inf[k]!r}, R {want!r}")
        if dropped_null is not None:
            self.assertEqual(report["rows_dropped_null"], dropped_null)
        return got, inf

    def test_mtcars_lm_with_a_factor(self):
        got, inf = self.fit_and_compare(
            [("wt", "float8"), ("hp", "float8"), ("qsec", "float8"), ("cyl", "text"), ("am", "integer"),
             ("mpg", "float8")],
            "d <- data.frame(wt = mtcars$wt, hp = mtcars$hp, qsec = mtcars$qsec, cyl = sf(mtcars$cyl), "
            "am = mtcars$am, mpg = mtcars$mpg)",
            "gaussian", "linear_regression", preprocess={"encoding": "drop_first"},
            expect_terms=["(Intercept)", "wt", "hp", "qsec", "cyl=6", "cyl=8", "am"])
        self.assertEqual(inf["df_residual"], 25)

    def test_swiss_lm(self):
        self.fit_and_compare(
            [("agriculture", "float8"), ("examination", "float8"), ("education", "float8"), ("catholic", "float8"),
             ("infant_mortality", "float8"), ("fertility", "float8")],
            "d <- data.frame(agriculture = swiss$Agriculture, examination = swiss$Examination, "
            "education = swiss$Education, catholic = swiss$Catholic, infant_mortality = swiss$Infant.Mortality, "
            "fertility = swiss$Fertility)",
            "gaussian", "linear_regression")

    def test_airquality_lm_drops_rows_with_nulls(self):
        # 37 rows have no Ozone (the target: skipped), 5 more no Solar.R (a feature: dropped)
        self.fit_and_compare(
            [("solar_r", "float8"), ("wind", "float8"), ("temp", "float8"), ("month", "text"), ("ozone", "float8")],
            "d <- data.frame(solar_r = airquality$Solar.R, wind = airquality$Wind, temp = airquality$Temp, "
            "month = sf(airquality$Month), ozone = airquality$Ozone)",
            "gaussian", "linear_regression", preprocess={"nulls": "drop", "encoding": "drop_first"},
            dropped_null=5)

    def test_diabetes_lm(self):
        cols, rows = dataset("diabetes")
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            for r in rows:
                f.write(",".join(r[1:]) + "\n")
        self.addCleanup(os.unlink, f.name)
        names = [c for c, _ in cols[1:]]
        self.fit_and_compare(
            cols[1:],
            f"d <- read.csv('{f.name}', header = FALSE, col.names = c({', '.join(repr(n) for n in names)}))",
            "gaussian", "linear_regression")

    def test_infert_glm_with_a_factor(self):
        got, inf = self.fit_and_compare(
            [("education", "text"), ("age", "float8"), ("parity", "float8"), ("induced", "float8"),
             ("spontaneous", "float8"), ("is_case", "integer")],
            "d <- data.frame(education = sf(infert$education), age = infert$age, parity = infert$parity, "
            "induced = infert$induced, spontaneous = infert$spontaneous, is_case = infert$case)",
            "binomial", "logistic_regression", preprocess={"encoding": "drop_first"},
            hyperparams={"penalty": "none"},
            expect_terms=["(Intercept)", "education=12+ yrs", "education=6-11yrs", "age", "parity", "induced",
                          "spontaneous"])
        self.assertTrue(inf["converged"])

    def test_mtcars_glm(self):
        self.fit_and_compare(
            [("wt", "float8"), ("hp", "float8"), ("am", "integer")],
            "d <- data.frame(wt = mtcars$wt, hp = mtcars$hp, am = mtcars$am)",
            "binomial", "logistic_regression", hyperparams={"penalty": "none"})


if __name__ == "__main__":
    unittest.main()
