"""The one registry of estimators (fastem._registry): model files, the command line and the
monitor read it; a new estimator is registered once, in its class statement."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import fastem
from fastem import _registry, cli, io
from fastem._base import EstimatorBase
from fastem.engine import ConvergenceMonitor, EMRun

PACKAGE = Path(fastem.__file__).parent


def _public_estimators():
    # The generic façades over a user's component (fastem.Mixture, fastem.HMM) hold an
    # object no model file can: they are not registered.
    return [getattr(fastem, name) for name in fastem.__all__
            if inspect.isclass(getattr(fastem, name))
            and issubclass(getattr(fastem, name), EstimatorBase)
            and "component" not in getattr(fastem, name)._parameter_names()]


def test_every_public_estimator_is_registered_once_under_its_class_name():
    classes = _registry.classes()
    public = _public_estimators()
    assert len(public) == 12
    for cls in public:
        assert classes[cls.__name__] is cls
        assert _registry.kind_of(cls) is not None
    assert set(classes) == {cls.__name__ for cls in public}
    # Model files name classes; the kinds are the command line's.
    assert io._registry()[0] == classes


def test_command_line_kinds_come_from_the_registry():
    assert cli.KINDS == {"gmm": fastem.GaussianMixture,
                         "bgm": fastem.BayesianGaussianMixture,
                         "hmm-categorical": fastem.CategoricalHMM,
                         "hmm-poisson": fastem.PoissonHMM,
                         "hmm-multinomial": fastem.MultinomialHMM,
                         "hmm-gaussian": fastem.GaussianHMM, "hmm-gmm": fastem.GMMHMM}
    assert _registry.command_kinds()["moe"] is fastem.MixtureOfExperts
    assert cli._with_covariances() == ["gmm", "bgm", "hmm-gaussian", "hmm-gmm"]


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(_registry, "_ENTRIES", dict(_registry._ENTRIES))


def test_a_new_estimator_registered_in_its_class_statement_is_saved_and_loaded(
        tmp_path, scratch_registry):
    class TwoComponents(fastem.GaussianMixture, kind="gmm-two", command=False):
        def __init__(self, n_components=2, *, random_state=None):
            super().__init__(n_components, random_state=random_state)

    assert _registry.classes()["TwoComponents"] is TwoComponents
    assert "gmm-two" not in _registry.command_kinds()
    X = np.random.RandomState(0).normal(size=(40, 2))
    model = TwoComponents(random_state=0).fit(X)
    model.save(tmp_path / "m.npz")
    loaded = fastem.load(tmp_path / "m.npz")
    assert type(loaded) is TwoComponents
    np.testing.assert_array_equal(loaded.means_, model.means_)


def test_a_kind_or_class_name_is_registered_by_one_class_only(scratch_registry):
    with pytest.raises(TypeError, match="clashes with the registered GaussianMixture"):
        class Other(EstimatorBase, kind="gmm"):
            pass
    with pytest.raises(TypeError, match="clashes"):
        type("GaussianHMM", (EstimatorBase,), {}, kind="another")
    with pytest.raises(TypeError, match="kind must be a non-empty string"):
        class Empty(EstimatorBase, kind=""):
            pass


def test_an_unregistered_subclass_is_not_saved(tmp_path):
    class Mine(fastem.GaussianMixture):
        pass

    with pytest.raises(TypeError, match="only fastem estimators can be saved"):
        Mine().save(tmp_path / "m.npz")


def _imports(path):
    """Every fastem module a file imports, at any depth of its code (resolved names)."""
    tree = ast.parse(path.read_text())
    package = ".".join(("fastem",) + path.relative_to(PACKAGE).parent.parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", ["io.py", "_registry.py", "engine/monitor.py"])
def test_model_files_and_the_monitor_import_no_estimator(path):
    # io read ConvergenceMonitor from fastem.hmm.base, and its class list from the
    # estimators: _base -> io -> hmm.base -> _base was a circle.
    estimators = ("fastem.hmm", "fastem.mixture", "fastem.moe", "fastem._base")
    imported = _imports(PACKAGE / path)
    assert not [name for name in imported if name.startswith(estimators)]


def test_the_engine_imports_no_estimator():
    estimators = ("fastem.hmm", "fastem.mixture", "fastem.moe", "fastem._base", "fastem.io")
    for path in (PACKAGE / "engine").glob("*.py"):
        imported = _imports(path)
        assert not [name for name in imported if name.startswith(estimators)], path.name


def _run(history, n_iter, converged=False, stopped=False):
    return EMRun(params=None, objective=history[-1] if history else -np.inf,
                 history=list(history), n_iter=n_iter, converged=converged,
                 stopped_by_callback=stopped)


@pytest.mark.parametrize(("history", "n_iter", "limit", "converged", "stopped", "flags"), [
    ([-3.0, -2.0, -1.9999], 3, 10, True, False, (True, False, False)),
    ([-3.0, -2.0, -1.5], 3, 3, False, False, (False, True, False)),
    ([-3.0, -2.0, -1.5], 3, 3, False, True, (False, False, False)),  # a callback stopped it
    ([-3.0, -2.0, -2.5], 3, 5, False, True, (False, False, True)),
    ([-3.0, -2.0, -2.0 - 1e-12], 3, 5, True, False, (True, False, False)),  # round-off
])
def test_the_monitor_reads_a_run(history, n_iter, limit, converged, stopped, flags):
    monitor = ConvergenceMonitor.of_run(_run(history, n_iter, converged, stopped), 1e-2,
                                        limit, False)
    assert monitor.history == history and monitor.iter == n_iter
    assert (monitor.converged, monitor.reached_max_iter, monitor.decreased) == flags
    again = ConvergenceMonitor._from_saved(monitor._saved())
    assert vars(again) == vars(monitor)
    assert fastem.hmm.ConvergenceMonitor is ConvergenceMonitor


def test_warmup_runs_the_hook_of_every_registered_estimator_that_defines_one(
        scratch_registry, monkeypatch):
    calls = []

    def recorder(name):
        return classmethod(lambda cls, groups, say: calls.append((name, frozenset(groups))))

    for cls in (fastem.GaussianMixture, fastem.GaussianHMM, fastem.CategoricalHMM,
                fastem.MixtureOfExperts):
        monkeypatch.setattr(cls, "_warmup", recorder(cls.__name__))

    class Warmed(EstimatorBase, kind="warmed", command=False):
        _warmup = recorder("Warmed")

    class Inherits(Warmed, kind="inherits", command=False):
        pass  # its base's hook is not repeated

    fastem.warmup(float32=False, missing=False)
    assert sorted(name for name, _ in calls) == ["CategoricalHMM", "GaussianHMM",
                                                 "GaussianMixture", "MixtureOfExperts",
                                                 "Warmed"]
    assert {groups for _, groups in calls} == {frozenset({"hmm", "experts"})}
