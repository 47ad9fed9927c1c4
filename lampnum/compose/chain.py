"""Chains f_N ∘ … ∘ f_1 by composing analyses: softmax(QKᵀ/√d)V, LayerNorm(x + attention(x)), GELU∘fc → mlp_proj.

Stage k receives the computed ẑ_k with |ẑ_k − z_k| ≤ β_k (rigorous) and ≈ φ_k (first order). It outputs
ẑ_{k+1} = f_k evaluated in its format (or exactly), with

    β_{k+1} = rigorous_k(ẑ_k, β_k) + own_k(ẑ_k),      φ_{k+1} = |J_k(ẑ_k)|·φ_k + own_k(ẑ_k),

(triangle inequality: |f̂(ẑ) − f(z)| ≤ |f̂(ẑ) − f(ẑ)| + |f(ẑ) − f(z)|), so the final β is rigorous whenever every
stage's is. A stage without a format is evaluated in float64, and its own error is then the distance of that float64
value from the exact interval enclosure of f(ẑ_k) (:meth:`~lampnum.compose.Primitive.float64_error`). The contributions of the chain's input components are (1ᵀ|J_N|⋯|J_1|) ⊙ β_1, by vector–|Jacobian|
products backwards through the stages (at their computed inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..emulate.spec import MatmulSpec
from ..formats import Format
from ..rounding.modes import RoundingMode
from .analysis import Report, analyze, as_primitive
from .base import Primitive, as_beta, as_input
from .contexts import enclose
from .elementwise import Add, Scale
from .layernorm import LayerNorm
from .linear import Linear
from .softmax import Softmax

__all__ = ["Stage", "ChainReport", "analyze_chain", "attention_chain", "residual_layernorm_chain"]


@dataclass(frozen=True)
class Stage:
    """One function of a chain, evaluated in ``fmt`` (with ``mode``, ``accumulator``) or exactly when fmt is None.
    A :class:`~lampnum.compose.Linear` stage is evaluated under its own ``spec`` when it has one."""

    f: Primitive | Callable[..., Any]
    fmt: Format | str | None = None
    mode: RoundingMode | str = "rne"
    accumulator: Format | str | None = None


@dataclass(frozen=True)
class ChainReport:
    """Per-stage reports, the computed values between stages, and the chain's final bounds and contributions."""

    stages: list[Report]
    values: list[np.ndarray]  # ẑ_1 (the input), ẑ_2, ..., the computed output
    first_order: np.ndarray
    rigorous: np.ndarray | None
    contributions: np.ndarray  # per component of the chain's input


def _computes(stage: Stage, primitive: Primitive) -> bool:
    return stage.fmt is not None or (isinstance(primitive, Linear) and primitive.spec is not None)


def analyze_chain(stages: Sequence[Stage | Primitive], z_hat: Any, beta: Any, *, rng: Any = None) -> ChainReport:
    """Propagate (ẑ, β) through the stages (module docstring); ``rng`` drives stochastic rounding."""
    stage_list: list[Stage] = [s if isinstance(s, Stage) else Stage(s) for s in stages]
    z = as_input(z_hat)
    beta_rig: np.ndarray | None = np.array(as_beta(beta, z.shape))
    phi = np.array(beta_rig)
    reports, values, primitives = [], [z], []
    for stage in stage_list:
        primitive = as_primitive(stage.f)
        primitives.append(primitive)
        computes = _computes(stage, primitive)
        # once a stage has no rigorous bound, later stages are analysed with the first-order β (and the chain's
        # rigorous bound is None); rows whose β is infinite (an earlier possible overflow) stay infinite
        beta_now = beta_rig if beta_rig is not None else phi
        lost = np.any(np.isinf(beta_now) | np.isinf(phi), axis=-1, keepdims=True)
        report = analyze(primitive, z, np.where(np.isinf(beta_now), 0.0, beta_now), fmt=stage.fmt, mode=stage.mode,
                         accumulator=stage.accumulator)  # fmt: skip
        phi = np.where(np.isinf(phi), 0.0, phi)
        own = report.own if computes else primitive.float64_error(z)  # exact stages are evaluated in float64
        first = primitive.first_order(z, phi)
        phi = np.where(lost, np.inf, first + own)
        if beta_rig is not None and report.rigorous is not None:
            beta_rig = np.where(lost, np.inf, np.nextafter(report.rigorous + own, np.inf))
        else:
            beta_rig = None
        z = primitive.evaluate(z, stage.fmt, stage.mode, rng=rng, accumulator=stage.accumulator) if computes \
            else primitive(z)  # fmt: skip
        reports.append(report)
        values.append(z)
    v = np.ones(values[-1].shape)
    for primitive, value in zip(reversed(primitives), reversed(values[:-1]), strict=True):
        v = primitive.abs_vjp(value, v)
    return ChainReport(stages=reports, values=values, first_order=phi, rigorous=beta_rig,
                       contributions=v * as_beta(beta, values[0].shape))  # fmt: skip


def attention_chain(q: Any, k: Any, v: Any, *, score_spec: MatmulSpec | None = None, softmax_fmt: Format | str |
                    None = None, value_spec: MatmulSpec | None = None, rng: Any = None) -> ChainReport:  # fmt: skip
    """softmax(q kᵀ/√d) v: the scores' bound from :func:`lampnum.bounds.matmul` (scores in float64 when ``score_spec``
    is None, with their float64 error bound), then Scale(1/√d) (the exact real, enclosed) → Softmax (in
    ``softmax_fmt``) → Linear(v) (under ``value_spec``)."""
    from ..bounds.products import matmul as matmul_bound
    from ..emulate import matmul

    q, k, v = as_input(q, "q"), as_input(k, "k"), as_input(v, "v")
    if score_spec is None:
        scores = q @ k.T
        beta = Linear(k.T).float64_error(q)
    else:
        scores, beta = matmul(q, k.T, score_spec, rng=rng), np.asarray(matmul_bound(q, k.T, score_spec))
    scale = 1.0 / np.sqrt(q.shape[-1])
    stages = [Stage(Scale(enclose(scale, 2))), Stage(Softmax(), fmt=softmax_fmt),
              Stage(Linear(v, spec=value_spec))]  # fmt: skip
    return analyze_chain(stages, scores, beta, rng=rng)


def residual_layernorm_chain(x: Any, attention_out: Any, attention_beta: Any, *, weight: Any = None,
                             bias: Any = None, eps: float = 1e-5, fmt: Format | str | None = None,
                             rng: Any = None) -> ChainReport:  # fmt: skip
    """LayerNorm(x + a) where a = attention(x) was computed with error ≤ ``attention_beta`` (x exact): the residual
    addition and the LayerNorm evaluated in ``fmt`` (exactly when None)."""
    stages = [Stage(Add(x), fmt=fmt), Stage(LayerNorm(weight, bias, eps), fmt=fmt)]
    return analyze_chain(stages, attention_out, attention_beta, rng=rng)
