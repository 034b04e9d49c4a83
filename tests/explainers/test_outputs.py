"""Output selection and shap return formats shared by the explainers."""

import numpy as np
import pytest

from deepshap.explainers._layout import LEGACY, format_values
from deepshap.explainers._outputs import output_names_for, resolve_ranked_output, select_outputs

SCORES = np.array([[0.1, 0.7, -0.9, 0.2], [0.5, -0.1, 0.3, 0.5]])


def test_all_outputs_in_natural_order_without_ranking():
    index = select_outputs(SCORES)
    assert index.dtype == np.int64
    np.testing.assert_array_equal(index, [[0, 1, 2, 3], [0, 1, 2, 3]])


@pytest.mark.parametrize(
    "order, expected",
    [("max", [[1, 3], [0, 3]]), ("min", [[2, 0], [1, 2]]), ("max_abs", [[2, 1], [0, 3]])],
)
def test_ranked_outputs_follow_the_requested_order_with_stable_ties(order, expected):
    np.testing.assert_array_equal(select_outputs(SCORES, 2, order), expected)


@pytest.mark.parametrize("bad", [0, 5, -1])
def test_ranked_output_out_of_range_is_an_error(bad):
    with pytest.raises(ValueError, match="ranked_output"):
        select_outputs(SCORES, bad)


def test_unknown_rank_order_and_non_integer_rank_are_errors():
    with pytest.raises(ValueError, match="output_rank_order"):
        select_outputs(SCORES, 2, "biggest")
    with pytest.raises(TypeError, match="positive integer"):
        select_outputs(SCORES, 2.0)


def test_both_spellings_of_ranked_output():
    assert resolve_ranked_output(None, 3) == 3
    assert resolve_ranked_output(2, None) == 2
    with pytest.raises(TypeError):
        resolve_ranked_output(2, 3)


def _phi(n_inputs, n_outputs, n=3):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 4, 5, n_outputs)) for _ in range(n_inputs)]


def _index(n_outputs, n=3):
    return np.tile(np.arange(n_outputs), (n, 1))


def test_single_output_single_input_is_an_array():
    phi = _phi(1, 1)
    values = format_values(phi, LEGACY, True, False, _index(1), False)
    assert isinstance(values, np.ndarray)
    np.testing.assert_array_equal(values, phi[0][..., 0])


def test_k_outputs_give_a_list_of_k_and_several_inputs_a_list_per_input():
    phi = _phi(2, 10)
    values = format_values(phi, LEGACY, False, True, _index(10), False)
    assert len(values) == 10 and len(values[0]) == 2
    np.testing.assert_array_equal(values[7][1], phi[1][..., 7])
    single_input = format_values(_phi(1, 10), LEGACY, False, False, _index(10), False)
    assert len(single_input) == 10 and single_input[0].shape == (3, 4, 5)


def test_ranked_format_returns_values_and_indexes():
    index = np.array([[3, 1], [0, 2], [1, 1]])
    values, indexes = format_values(_phi(1, 2), LEGACY, False, False, index, True)
    assert len(values) == 2 and indexes.dtype == np.int64
    np.testing.assert_array_equal(indexes, index)


def test_output_names_follow_each_samples_ranking():
    names = output_names_for(np.array([[2, 0], [1, 2]]), ["cat", "dog", "eel"])
    np.testing.assert_array_equal(names, [["eel", "cat"], ["dog", "eel"]])
    assert output_names_for(np.array([[0]]), None) is None
