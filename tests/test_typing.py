"""The public API is typed (PEP 561): every public callable's parameters and return
value are annotated, and the annotations resolve."""

import inspect
import typing
from importlib import resources

import pytest

import fastem
from fastem.engine import OnlineFitter, fit_model

ESTIMATORS = [fastem.GaussianMixture, fastem.EMImputer, fastem.GaussianHMM, fastem.GMMHMM,
              fastem.CategoricalHMM, fastem.PoissonHMM, fastem.MultinomialHMM, OnlineFitter]
FUNCTIONS = [fastem.load, fastem.load_faithful, fastem.threads, fastem.warmup, fit_model,
             fastem.datasets.faithful_path]


def _public_methods(cls):
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") or name == "__init__":
            yield name, member


def _check_annotated(function, where):
    hints = typing.get_type_hints(function)  # raises if an annotation does not resolve
    signature = inspect.signature(function)
    missing = [name for name in signature.parameters
               if name not in ("self", "cls") and name not in hints]
    assert not missing, f"{where}: parameters without annotation: {missing}"
    assert "return" in hints, f"{where}: no return annotation"
    return hints


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_public_method_is_annotated(cls):
    for name, method in _public_methods(cls):
        _check_annotated(method, f"{cls.__name__}.{name}")


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_public_functions_are_annotated(function):
    _check_annotated(getattr(function, "__wrapped__", function), function.__name__)


def test_fit_returns_the_estimator_type():
    # Self, not the base class: chained calls keep the subclass for type checkers.
    hints = typing.get_type_hints(fastem.GaussianHMM.fit)
    assert hints["return"] is typing.get_type_hints(fastem.GaussianMixture.fit)["return"]
    assert "Self" in repr(hints["return"])


def test_package_ships_the_py_typed_marker():
    assert resources.files("fastem").joinpath("py.typed").is_file()
