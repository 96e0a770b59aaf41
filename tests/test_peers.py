"""tests/peers.py: the compatibility shims that let the peers run here, checked against the real thing."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import scipy.linalg

from peers import sqrtm_accepting_disp


def test_sqrtm_shim_returns_what_scipy_returned_with_disp_false():
    """On SciPy ≤ 1.17 (which still has ``disp``) the shim around a disp-less sqrtm gives the same pair."""
    if "disp" not in inspect.signature(scipy.linalg.sqrtm).parameters or getattr(scipy.linalg.sqrtm, "accepts_disp",
                                                                                 False):
        pytest.skip(f"SciPy {scipy.__version__} has no native disp argument to compare with")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 40))
    a = a @ a.T + np.eye(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected_root, expected_error = scipy.linalg.sqrtm(a, disp=False)
    shim = sqrtm_accepting_disp(lambda m: scipy.linalg.sqrtm(m))
    root, error = shim(a, disp=False)
    np.testing.assert_array_equal(root, expected_root)
    assert error == pytest.approx(expected_error, rel=1e-12)
    np.testing.assert_array_equal(shim(a), expected_root)
