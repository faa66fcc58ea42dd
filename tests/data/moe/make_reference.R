# Reference optima for tests/test_moe_reference.py, from R's flexmix and mixtools.
# CI has no R: this script wrote the CSV files and reference.json beside it.
#   apt-get install r-cran-flexmix r-cran-mixtools r-cran-jsonlite
#   cd tests/data/moe && Rscript make_reference.R
# Each model is fitted from many random starts with a tight tolerance; the best
# log-likelihood is kept, with its parameters (one row per component). NPreg's
# binary yb is left out: two logistic regressions on 0/1 data separate it, and
# flexmix's coefficients diverge (no finite optimum to compare with).
suppressMessages({library(flexmix); library(mixtools); library(jsonlite)})
set.seed(2026)
control <- list(iter.max = 10000, tolerance = 1e-12, minprior = 0, verbose = 0)

best_flexmix <- function(..., nrep = 30) {
  fits <- lapply(seq_len(nrep), function(i) {
    tryCatch(flexmix(..., control = control), error = function(e) NULL)
  })
  fits <- Filter(function(f) !is.null(f) && length(f@size) == list(...)$k, fits)
  fits[[which.max(sapply(fits, logLik))]]
}

describe <- function(fit) {
  params <- parameters(fit)
  out <- list(loglik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
              coef = unname(t(params[grepl("^coef", rownames(params)), , drop = FALSE])),
              coef_names = rownames(params)[grepl("^coef", rownames(params))])
  if ("sigma" %in% rownames(params)) out$sigma <- unname(params["sigma", ])
  if (inherits(fit@concomitant, "FLXPmultinom")) {
    out$gate <- unname(t(parameters(fit, which = "concomitant")))
  } else {
    out$prior <- unname(prior(fit))
  }
  out
}

data(NPreg)
data(betablocker)
data(tonedata)
NPreg$x2 <- NPreg$x^2
write.csv(NPreg[, c("x", "yn", "yp", "yb")], "npreg.csv", row.names = FALSE)
betablocker$treated <- as.numeric(betablocker$Treatment == "Treated")
write.csv(betablocker[, c("Deaths", "Total", "treated")], "betablocker.csv", row.names = FALSE)
write.csv(tonedata[, c("stretchratio", "tuned")], "tonedata.csv", row.names = FALSE)

reference <- list(
  npreg_gaussian = describe(best_flexmix(yn ~ x + x2, data = NPreg, k = 2)),
  npreg_poisson = describe(best_flexmix(yp ~ x, data = NPreg, k = 2,
                                        model = FLXMRglm(family = "poisson"))),
  betablocker_binomial = describe(best_flexmix(cbind(Deaths, Total - Deaths) ~ treated,
                                               data = betablocker, k = 3,
                                               model = FLXMRglm(family = "binomial"))),
  npreg_gaussian_softmax = describe(best_flexmix(yn ~ x + x2, data = NPreg, k = 2,
                                                 concomitant = FLXPmultinom(~ x))),
  npreg_poisson_softmax = describe(best_flexmix(yp ~ x, data = NPreg, k = 2,
                                                model = FLXMRglm(family = "poisson"),
                                                concomitant = FLXPmultinom(~ x)))
)

# mixtools: a mixture of two linear regressions of tuned on stretchratio.
tone <- lapply(1:30, function(i) tryCatch(
  regmixEM(tonedata$tuned, tonedata$stretchratio, k = 2, epsilon = 1e-12, maxit = 10000,
           verb = FALSE), error = function(e) NULL))
tone <- Filter(Negate(is.null), tone)
tone <- tone[[which.max(sapply(tone, function(f) f$loglik))]]
reference$tonedata_gaussian <- list(loglik = tone$loglik, coef = unname(t(tone$beta)),
                                    sigma = unname(tone$sigma), prior = unname(tone$lambda))
reference$versions <- list(flexmix = as.character(packageVersion("flexmix")),
                           mixtools = as.character(packageVersion("mixtools")),
                           R = R.version.string)
write(toJSON(reference, digits = I(15), auto_unbox = TRUE, pretty = TRUE), "reference.json")
