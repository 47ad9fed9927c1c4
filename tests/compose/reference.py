"""200-bit mpmath references of the primitives: values and Jacobians computed independently of lampnum.compose."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mpmath
import numpy as np

PREC = 200
#: differences of values near 1 (softmax of a dominant score) cancel down to float64's 2^-1074: compare at 1200 bits
DIFF_PREC = 1200
Vector = Sequence[mpmath.mpf]


def mp(values: np.ndarray) -> list[mpmath.mpf]:
    return [mpmath.mpf(float(v)) for v in np.ravel(values)]


def softmax(z: Vector) -> list[mpmath.mpf]:
    m = max(z)
    e = [mpmath.exp(x - m) for x in z]
    s = mpmath.fsum(e)
    return [x / s for x in e]


def log_softmax(z: Vector) -> list[mpmath.mpf]:
    m = max(z)
    lse = m + mpmath.log(mpmath.fsum(mpmath.exp(x - m) for x in z))
    return [x - lse for x in z]


def exp(z: Vector) -> list[mpmath.mpf]:
    return [mpmath.exp(x) for x in z]


def gelu_tanh(z: Vector) -> list[mpmath.mpf]:
    c = mpmath.sqrt(2 / mpmath.pi)
    k = mpmath.mpf(44715) / 10**6
    # ½x(1 + tanh y) = x/(1 + e^{−2y}): the same real number, without 1 + tanh y cancelling in the left tail
    return [x / (1 + mpmath.exp(-2 * c * (x + k * x**3))) for x in z]


def gelu_erf(z: Vector) -> list[mpmath.mpf]:
    return [x / 2 * mpmath.erfc(-x / mpmath.sqrt(2)) for x in z]  # erfc: no cancellation in the left tail


def layernorm(weight: np.ndarray | None, bias: np.ndarray | None, eps: float) -> Callable[[Vector], list]:
    def f(z: Vector) -> list[mpmath.mpf]:
        n = len(z)
        mu = mpmath.fsum(z) / n
        var = mpmath.fsum((x - mu) ** 2 for x in z) / n
        sigma = mpmath.sqrt(var + mpmath.mpf(eps))
        y = [(x - mu) / sigma for x in z]
        if weight is not None:
            y = [mpmath.mpf(float(w)) * v for w, v in zip(np.ravel(weight), y, strict=True)]
        if bias is not None:
            y = [v + mpmath.mpf(float(b)) for b, v in zip(np.ravel(bias), y, strict=True)]
        return y

    return f


def rows(f: Callable[[Vector], list], z: np.ndarray) -> list[list[mpmath.mpf]]:
    """f applied to each row (last axis) of z at 200 bits."""
    with mpmath.workprec(PREC):
        return [f(mp(row)) for row in z.reshape(-1, z.shape[-1])]


def max_abs_difference(f: Callable[[Vector], list], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|f(a) − f(b)| per entry (a, b exact float64 arrays), at 1200 bits, as float64 rounded up."""
    with mpmath.workprec(DIFF_PREC):
        out = []
        for ra, rb in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]), strict=True):
            fa, fb = f(mp(ra)), f(mp(rb))
            out.append([float(abs(x - y)) for x, y in zip(fa, fb, strict=True)])
    return np.nextafter(np.array(out).reshape(a.shape), np.inf)


def error_against(f: Callable[[Vector], list], z: np.ndarray, computed: np.ndarray) -> np.ndarray:
    """|computed − f(z)| per entry, exact f at 1200 bits, rounded up."""
    with mpmath.workprec(DIFF_PREC):
        out = []
        for rz, rc in zip(z.reshape(-1, z.shape[-1]), computed.reshape(-1, computed.shape[-1]), strict=True):
            fz = f(mp(rz))
            out.append([float(abs(mpmath.mpf(float(c)) - x)) for c, x in zip(rc, fz, strict=True)])
    return np.nextafter(np.array(out).reshape(computed.shape), np.inf)


def jacobian(f: Callable[[Vector], list], z: np.ndarray) -> np.ndarray:
    """d f_i/d z_j at one point (a vector) by 800-bit central differences with step 2^-200 (truncation ~2^-400;
    the working precision absorbs the cancellation of 1 + tanh and 1 + erf far in the left tail)."""
    with mpmath.workprec(800):
        x = mp(z)
        h = mpmath.mpf(2) ** -200
        J = np.empty((len(f(x)), len(x)))
        for j in range(len(x)):
            plus, minus = list(x), list(x)
            plus[j] += h
            minus[j] -= h
            fp, fm = f(plus), f(minus)
            J[:, j] = [float((a - b) / (2 * h)) for a, b in zip(fp, fm, strict=True)]
    return J
