"""``analyze`` on primitives and on plain callables (numeric Jacobians with error control), and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import lampnum.compose as lc

from . import reference as ref
from .strategies import examples, inputs


def test_report_fields_and_totals() -> None:
    z_hat = np.array([[4.0, 1.0, 0.5, -2.0], [0.0, 0.0, 0.0, 0.0]])
    rep = lc.analyze(lc.Softmax(axis=-1), z_hat, 1e-3, fmt="bf16")
    assert rep.value.shape == rep.first_order.shape == rep.rigorous.shape == rep.own.shape == z_hat.shape
    np.testing.assert_allclose(rep.value.sum(-1), 1.0)
    assert np.all(rep.total >= rep.rigorous) and np.all(rep.total >= rep.own)
    assert np.array_equal(rep.total_first_order, rep.first_order + rep.own)
    s = rep.value
    np.testing.assert_allclose(rep.contributions, 2 * s * (1 - s) * 1e-3, rtol=1e-12)  # LAMP-MATH.md §2
    assert "exact" in rep.method
    plain = lc.analyze(lc.Softmax(), z_hat, 1e-3)
    assert plain.own is None and np.array_equal(plain.total, plain.rigorous)


@settings(max_examples=examples(20))
@given(data=inputs(max_n=6, kinds=["normal", "wide", "integers"]))
def test_numeric_jacobian_error_estimate_is_honest(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Against the 800-bit Jacobian: the numerical Jacobian's error stays below its own estimate."""
    z_hat, _ = data
    row = z_hat[0]
    J, err = lc.numeric_jacobian(lambda z: lc.Softmax()(z), row)
    exact = ref.jacobian(ref.softmax, row)
    assert np.all(np.abs(J - exact) <= err), ([float(x).hex() for x in row], np.argwhere(np.abs(J - exact) > err))
    assert np.all(err <= 1e-6 * np.max(np.abs(exact)) + 1e-10)  # and the estimate is small


@settings(max_examples=examples(15))
@given(data=inputs(max_n=6, kinds=["normal", "integers"]))
def test_callables_match_their_primitives(data: tuple[np.ndarray, np.ndarray]) -> None:
    """A plain callable (numeric Jacobian) gives the primitive's first order, up to the error estimate it adds."""
    z_hat, beta = data
    z_hat, beta = z_hat[0], beta[0]
    primitive = lc.analyze(lc.GELU(), z_hat, beta)
    callable_ = lc.analyze(lambda z: lc.GELU()(z), z_hat, beta)
    assert callable_.rigorous is None and callable_.own is None and "none" in callable_.method
    assert np.all(callable_.first_order >= primitive.first_order * (1 - 1e-12))
    np.testing.assert_allclose(callable_.first_order, primitive.first_order, rtol=1e-6, atol=1e-10 * beta.max())
    exact_jac = lc.analyze(lambda z: lc.GELU()(z), z_hat, beta, jac=lambda z: lc.GELU().jacobian(z))
    np.testing.assert_allclose(exact_jac.first_order, primitive.first_order, rtol=1e-12)


def test_callable_with_a_jacobian_bound_is_rigorous() -> None:
    """tanh with |tanh′| ≤ 1 − min(tanh² over the box): a user-supplied bound over the box gives ``rigorous``."""

    def jac_bound(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        smallest = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
        return np.diag(1 - np.tanh(smallest) ** 2)

    z_hat, beta = np.array([0.3, -2.0, 5.0]), np.array([0.01, 0.1, 0.5])
    rep = lc.analyze(np.tanh, z_hat, beta, jac_bound=jac_bound)
    for z in (z_hat - beta, z_hat + beta):
        assert np.all(np.abs(np.tanh(z_hat) - np.tanh(z)) <= rep.rigorous)
    assert np.all(rep.first_order <= rep.rigorous * (1 + 1e-6))


def test_bad_input_raises_clearly() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        lc.analyze(lc.Softmax(), np.array([1.0, np.inf]), 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        lc.analyze(lc.Softmax(), np.array([1.0, 2.0]), np.nan)
    with pytest.raises(ValueError, match="non-negative"):
        lc.analyze(lc.Softmax(), np.array([1.0, 2.0]), -0.1)
    with pytest.raises(ValueError, match="does not broadcast"):
        lc.analyze(lc.Softmax(), np.array([1.0, 2.0]), np.ones(3))
    with pytest.raises(ValueError, match="at least one dimension"):
        lc.analyze(lc.Exp(), 1.0, 0.1)
    with pytest.raises(ValueError, match="axis=-1"):
        lc.Softmax(axis=0)
    with pytest.raises(ValueError, match="jac and jac_bound are for plain callables"):
        lc.analyze(lc.Exp(), np.ones(2), 0.1, jac=lambda z: z)
    with pytest.raises(TypeError, match="callable"):
        lc.analyze(3.0, np.ones(2), 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="approximate"):
        lc.GELU("sigmoid")
    with pytest.raises(ValueError, match="eps > 0"):
        lc.LayerNorm(eps=0.0)
    with pytest.raises(ValueError, match="needs a format"):
        lc.Softmax().evaluate(np.ones(3), None)
