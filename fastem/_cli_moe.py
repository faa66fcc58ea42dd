"""``fastem fit moe``: a mixture of experts from a table (one target column)."""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._registry import command_kinds, kind_of

KIND = "moe"
"""The kind ``fastem fit`` fits through this module (the estimator registers it)."""


def _split_names(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def fit_moe(args, read, user_error, replaced_on_success):
    """Fit ``MixtureOfExperts`` on ``args.data``: ``--target`` is y, ``--trials`` the
    binomial trials, ``--columns`` the experts' columns (default: every other numeric
    column), ``--gating-columns`` the gate's (default: the experts')."""

    if args.target is None:
        raise user_error("fit moe: --target COLUMN is required (the column to predict)")
    if args.trials is not None and args.expert != "binomial":
        raise user_error("--trials applies to --expert binomial only")
    named = [args.target] + ([args.trials] if args.trials else [])
    features = _split_names(args.columns) if args.columns else None
    gating = _split_names(args.gating_columns) if args.gating_columns else None
    wanted = None
    if features is not None:
        wanted = ",".join(dict.fromkeys(features + (gating or []) + named))
    args.columns = wanted
    X, names, _ = read(args)
    for name in named + (gating or []):
        if name not in names:
            raise user_error(f"no column {name!r} in {args.data} (columns: {', '.join(names)})")
    expert_names = features or [n for n in names if n not in named]
    if not expert_names:
        raise user_error("fit moe: no feature columns left besides the target")
    position = {name: i for i, name in enumerate(names)}
    gating_names = gating or expert_names
    table = np.column_stack([X[:, position[n]] for n in expert_names])
    gating_index = None
    if args.gating != "constant":
        extra = [n for n in gating_names if n not in expert_names]
        table = np.column_stack([table] + [X[:, position[n]] for n in extra]) if extra \
            else table
        columns = expert_names + extra
        gating_index = [columns.index(n) for n in gating_names]
    y = X[:, position[args.target]]
    trials = X[:, position[args.trials]] if args.trials else None
    options = dict(expert=args.expert, gating=args.gating, random_state=args.random_state,
                   n_threads=args.threads, expert_columns=list(range(len(expert_names))),
                   gating_columns=gating_index, n_init=args.n_init or 1)
    for name in ("n_components", "tol", "max_iter"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.init_params:
        options["init_params"] = args.init_params
    model = command_kinds()[KIND](**options)
    started = time.perf_counter()
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        model.fit(table, y, trials=trials)
    seconds = time.perf_counter() - started
    model.feature_names_in_ = np.asarray(expert_names + [n for n in gating_names
                                                          if n not in expert_names],
                                         dtype=object)
    model.target_name_ = args.target
    if args.trials:
        model.trials_name_ = args.trials
    # The file first: a reader that leaves early (`| head`) must never cost it.
    if args.output:
        with replaced_on_success(args.output) as temporary:
            model.save(temporary)
    if not args.quiet:
        print(summary(model, table, y, trials, expert_names, gating_names, seconds),
              flush=True)
    return 0


def summary(model, X, y, trials, expert_names, gating_names, seconds):
    """A few lines: the fit, its log-likelihood and BIC, each expert's equation."""
    loglik = model.score_samples(X, y, trials=trials).sum()
    lines = [f"MixtureOfExperts: {model.n_components} {model.expert} experts, "
             f"{model.gating} gate, {len(y)} rows, {model.n_iter_} iterations "
             f"({'converged' if model.converged_ else 'not converged'}) in {seconds:.2f} s",
             f"  log-likelihood {loglik:.4f}   BIC {model.bic(X, y, trials=trials):.4f}"]
    link = {"gaussian": "", "poisson": "log E[y] = ", "binomial": "logit p = "}[model.expert]
    coef = model.coef_.reshape(model.n_components, -1, len(expert_names))[:, 0]
    intercept = np.reshape(model.intercept_, (model.n_components, -1))[:, 0]
    for k in range(model.n_components):
        terms = " ".join(f"{c:+.4g}*{n}" for c, n in zip(coef[k], expert_names, strict=True))
        weight = f"weight {model.weights_[k]:.3f}"
        spread = (f", sd {np.sqrt(model.covariances_[k, 0, 0]):.4g}"
                  if model.expert == "gaussian" else "")
        lines.append(f"  expert {k}: {link}{intercept[k]:.4g} {terms}  ({weight}{spread})")
    if model.gating == "softmax":
        for k in range(1, model.n_components):
            terms = " ".join(f"{c:+.4g}*{n}" for c, n in
                             zip(model.gate_coef_[k], gating_names, strict=True))
            lines.append(f"  gate {k} vs 0: log-odds {model.gate_intercept_[k]:.4g} {terms}")
    return "\n".join(lines)


def is_experts(model):
    return kind_of(model) == KIND


def saved_columns(model, args, read, user_error, need_target):
    """(X, y or None, trials or None) of ``args.data`` by the names ``fastem fit moe``
    saved with the model: the feature columns, the target (when present, or required
    with ``need_target``) and the binomial trials."""
    names = getattr(model, "feature_names_in_", None)
    target = getattr(model, "target_name_", None)
    if names is None or target is None:
        raise user_error("this mixture of experts was not fitted by `fastem fit moe` (it has "
                         "no saved column names); use Python: fastem.load(MODEL)")
    if getattr(args, "columns", None):
        raise user_error("--columns does not apply to mixtures of experts: they read the "
                         "columns saved by `fastem fit moe`")
    trials_name = getattr(model, "trials_name_", None)
    args.columns = None
    table, header, _ = read(args)
    position = {name: i for i, name in enumerate(header)}
    wanted = [str(n) for n in names] + ([trials_name] if trials_name else [])
    absent = [n for n in wanted if n not in position]
    if absent:
        raise user_error(f"{args.data} lacks the columns the model was fitted on: "
                         f"{', '.join(absent)}")
    X = table[:, [position[str(n)] for n in names]]
    trials = table[:, position[trials_name]] if trials_name else None
    y = None
    if target in position:
        y = table[:, position[target]]
    elif need_target:
        raise user_error(f"{args.data} has no column {target!r}, the target the model was "
                         "fitted on")
    return X, y, trials


def predict(model, args, read, user_error, write_rows):
    """Rows of E[y | x] (with --proba: the posterior of the experts given x and y)."""
    X, y, trials = saved_columns(model, args, read, user_error, need_target=args.proba)
    if args.proba:
        write_rows(model.predict_proba(X, y, trials=trials), args.output, "%.6g")
    else:
        write_rows(np.reshape(model.predict(X, trials=trials), (len(X), -1)), args.output,
                   "%.10g")
    return 0


def score(model, args, read, user_error, write_rows):
    """The total log p(y | x); with --output, per-row values."""
    X, y, trials = saved_columns(model, args, read, user_error, need_target=True)
    per_row = model.score_samples(X, y, trials=trials)
    if args.output:
        write_rows(per_row[:, None], args.output, "%.17g")
    print(f"{float(per_row.sum()):.6f}")
    return 0
