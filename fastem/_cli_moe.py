"""``fastem fit moe``: a mixture of experts from a table (one target column)."""

from __future__ import annotations

import time
import warnings

import numpy as np


def _split_names(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def fit_moe(args, read, user_error, replaced_on_success):
    """Fit ``MixtureOfExperts`` on ``args.data``: ``--target`` is y, ``--trials`` the
    binomial trials, ``--columns`` the experts' columns (default: every other numeric
    column), ``--gating-columns`` the gate's (default: the experts')."""
    import fastem

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
    model = fastem.MixtureOfExperts(**options)
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
    if not args.quiet:
        print(summary(model, table, y, trials, expert_names, gating_names, seconds))
    if args.output:
        with replaced_on_success(args.output) as temporary:
            model.save(temporary)
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
