"""scikit-learn's own API conformance checks."""

import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastem import GaussianMixture  # noqa: E402

ESTIMATORS = [
    GaussianMixture(),
    GaussianMixture(2, covariance_type="diag", random_state=0),
    GaussianMixture(3, covariance_type="tied", init_params="random", random_state=0),
]


def expected_failures(estimator):
    if estimator.n_components == 1:
        return {}
    # The check shuffles the weighted rows; k-means++ and random seeding draw rows by
    # position, so the two fits start elsewhere (scikit-learn marks its BisectingKMeans
    # the same way). Weight semantics on unshuffled rows and from identical starting
    # parameters are tested in test_sample_weight.py.
    return {"check_sample_weight_equivalence_on_dense_data":
            "seeding draws rows by position; shuffled rows seed differently"}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
