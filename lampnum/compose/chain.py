"""Chains f_N ∘ … ∘ f_1 by composing analyses: softmax(QKᵀ/√d)V, LayerNorm(x + attention(x)), GELU∘fc → mlp_proj.

Stage k receives the computed ẑ_k with |ẑ_k − z_k| ≤ β_k (rigorous) and ≈ φ_k (first order). It outputs
ẑ_{k+1} = f_k evaluated in its format (or exactly), with

    β_{k+1} = rigorous_k(ẑ_k, β_k) + own_k(ẑ_k),      φ_{k+1} = |J_k(ẑ_k)|·φ_k + own_k(ẑ_k),

(triangle inequality: |f̂(ẑ) − f(z)| ≤ |f̂(ẑ) − f(ẑ)| + |f(ẑ) − f(z)|), so the final β is rigorous whenever every
stage's is. The contributions of the chain's input components are (1ᵀ|J_N|⋯|J_1|) ⊙ β_1, by vector–|Jacobian|
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
    stages = [s if isinstance(s, Stage) else Stage(s) for s in stages]
    z = as_input(z_hat)
    beta_rig: np.ndarray | None = np.array(as_beta(beta, z.shape))
    phi = np.array(beta_rig)
    reports, values, primitives = [], [z], []
    for stage in stages:
        primitive = as_primitive(stage.f)
        primitives.append(primitive)
        computes = _computes(stage, primitive)
        # once a stage has no rigorous bound, later stages are analysed with the first-order β (and the chain's
        # rigorous bound is None)
        report = analyze(primitive, z, beta_rig if beta_rig is not None else phi, fmt=stage.fmt, mode=stage.mode,
                         accumulator=stage.accumulator)  # fmt: skip
        own = report.own if report.own is not None else 0.0
        first = primitive.first_order(z, phi)
        phi = first + own
        beta_rig = None if (beta_rig is None or report.rigorous is None) else np.nextafter(report.rigorous + own, np.inf)
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
    """softmax(q kᵀ/√d) v: the scores' bound from :func:`lampnum.bounds.matmul` (exact scores when ``score_spec`` is
    None), then Scale(1/√d) → Softmax (in ``softmax_fmt``) → Linear(v) (under ``value_spec``)."""
    from ..bounds.products import matmul as matmul_bound
    from ..emulate import matmul

    q, k, v = as_input(q, "q"), as_input(k, "k"), as_input(v, "v")
    if score_spec is None:
        scores, beta = q @ k.T, np.zeros((q.shape[0], k.shape[0]))
    else:
        scores, beta = matmul(q, k.T, score_spec, rng=rng), matmul_bound(q, k.T, score_spec)
    stages = [Stage(Scale(1.0 / np.sqrt(q.shape[-1]))), Stage(Softmax(), fmt=softmax_fmt),
              Stage(Linear(v, spec=value_spec))]  # fmt: skip
    return analyze_chain(stages, scores, beta, rng=rng)


def residual_layernorm_chain(x: Any, attention_out: Any, attention_beta: Any, *, weight: Any = None,
                             bias: Any = None, eps: float = 1e-5, fmt: Format | str | None = None,
                             rng: Any = None) -> ChainReport:  # fmt: skip
    """LayerNorm(x + a) where a = attention(x) was computed with error ≤ ``attention_beta`` (x exact): the residual
    addition and the LayerNorm evaluated in ``fmt`` (exactly when None)."""
    stages = [Stage(Add(x), fmt=fmt), Stage(LayerNorm(weight, bias, eps), fmt=fmt)]
    return analyze_chain(stages, attention_out, attention_beta, rng=rng)
