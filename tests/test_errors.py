"""deepshap's errors: one UnsupportedOperationError for both backends, catchable as shap's users expect."""

from __future__ import annotations

import deepshap
from deepshap.errors import UnsupportedOperationError


def test_one_unsupported_operation_error_for_both_backends() -> None:
    assert deepshap.UnsupportedOperationError is UnsupportedOperationError
    assert issubclass(UnsupportedOperationError, TypeError)
    assert issubclass(UnsupportedOperationError, NotImplementedError)
    assert issubclass(deepshap.AdditivityError, AssertionError)
