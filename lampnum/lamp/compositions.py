"""LAMP compositions f∘g of a transformer for the GPT-2 model (arXiv 2601.21623; LAMP-MATH.md §2–3).

Each object holds a :class:`LampConfig` (and, where the look-ahead needs them, per-model constants computed
once); its ``apply`` takes the low-precision output ``ẑ`` of g together with g's inputs, selects components
from ``ẑ`` (the look-ahead: f's sensitivity is known before f is applied), recomputes the selected ones in
high precision and returns a :class:`~lampnum.lamp.recompute.LampResult` (corrected ``ẑ``, mask, recompute
rate, multiply-adds). The caller then applies f in whatever precision its policy says.

=================  ==============================  =========================================================
composition        g (recomputed components)       contribution of component j (per row)
=================  ==============================  =========================================================
AttentionScores    ``q_i·k_j/√d`` (causal)         the softmax rules of :func:`lampnum.lamp.select`
LogitsSoftmax      ``h·w_v`` (+ bias)              the softmax rules over the vocabulary
GeluFc             ``x·W₁[:, j] + b_j``            ``‖W₂[j, :]‖₂·|GELU′(ẑ_j)|·β_j`` (look-ahead to mlp_proj)
LayerNormResidual  ``x_j + y_j`` (y optionally     ``‖J_LN[:, j]‖₂·β_j``, J_LN the LayerNorm Jacobian at ẑ
                   recomputed as ``h·W[:, j]+b``)
=================  ==============================  =========================================================

For GeluFc and LayerNormResidual the rules are ``strict`` (β_j = |ẑ_j|: the relative error model of the
paper's strict rule, ε absorbed in τ), ``bound`` (β the actual componentwise bound, passed to ``apply``),
``top_mu`` and ``budget`` (ranked by the contribution with ``indicator`` "strict" or "bound"), ``none`` and
``all``; the softmax-specific rules (mass, relaxed, length) raise. ``LampConfig(random=True)`` is the
ablation: the same count per row as the configured rule, at uniformly random valid positions (needs ``rng``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..emulate import MatmulSpec
from . import kernels, rules
from ._math import gelu_derivative, layernorm_column_norms
from .recompute import LampResult, _operand_batch, recompute_product
from .select import DEFAULT_LENGTH_REF, check_rule_params, select, valid_mask

__all__ = ["LampConfig", "AttentionScores", "LogitsSoftmax", "GeluFc", "LayerNormResidual", "causal_mask"]

_SOFTMAX_ONLY = ("mass", "relaxed", "length")
_SUPPLIED_LATER = object()  # stands for bound= / rng that apply() receives


@dataclass(frozen=True)
class LampConfig:
    """A LAMP rule and its parameters, validated once (see :func:`lampnum.lamp.select` for their meaning).

    ``rule`` is any rule but ``"random"`` (use ``random=True``: the ablation with the configured rule's count
    per row); ``high`` is the recompute precision (None: float64, see :mod:`lampnum.lamp.recompute`).

    >>> config = LampConfig("strict", tau=0.1, random=True)  # the ablation of the strict rule
    >>> config.rule, config.tau, config.needs_bound
    ('strict', 0.1, False)
    """

    rule: str = "none"
    tau: float | None = None
    mu: int | None = None
    rate: float | None = None
    length_ref: float | None = None
    indicator: str | None = None
    random: bool = False
    high: MatmulSpec | None = None

    def __post_init__(self) -> None:
        if self.rule == "random":
            raise ValueError(
                "use LampConfig(rule=<a rule>, random=True): the ablation takes its count from a rule"
            )
        needs_bound = self.rule == "bound" or self.indicator == "bound"
        check_rule_params(
            self.rule,
            tau=self.tau,
            mu=self.mu,
            rate=self.rate,
            length_ref=self.length_ref,
            indicator=self.indicator,
            bound=_SUPPLIED_LATER if needs_bound else None,
        )
        if self.high is not None and not isinstance(self.high, MatmulSpec):
            raise TypeError(f"high must be a lampnum.MatmulSpec or None, got {type(self.high).__name__}")

    @property
    def needs_bound(self) -> bool:
        """Whether ``apply`` needs ``bound=`` (the bound rule, or ranking by the bound-aware indicator)."""
        return self.rule == "bound" or self.indicator == "bound"

    def _check_bound(self, bound: Any) -> None:
        if self.needs_bound and bound is None:
            raise TypeError(f"rule {self.rule!r} with indicator {self.indicator!r} needs bound= in apply()")
        if not self.needs_bound and bound is not None:
            raise TypeError(f"rule {self.rule!r} does not use bound=")

    def _ablate(self, mask: np.ndarray, values: np.ndarray, valid: np.ndarray, rng: Any) -> np.ndarray:
        if not self.random:
            return mask
        if rng is None:
            raise TypeError("LampConfig(random=True) needs rng= (a numpy.random.Generator or an int seed)")
        return select("random", values, causal=valid, count=mask.sum(axis=-1), rng=rng)

    def softmax_mask(self, scores: np.ndarray, valid: np.ndarray, bound: Any, rng: Any) -> np.ndarray:
        """The mask over softmax inputs ``scores`` (rows along the last axis) with ``valid`` the causal
        mask."""
        self._check_bound(bound)
        mask = select(
            self.rule,
            scores,
            tau=self.tau,
            mu=self.mu,
            rate=self.rate,
            causal=valid,
            bound=bound,
            length_ref=self.length_ref,
            indicator=self.indicator,
        )
        return self._ablate(mask, scores, valid, rng)

    def contribution_mask(self, weight: np.ndarray, zhat: np.ndarray, bound: Any, rng: Any) -> np.ndarray:
        """The mask when component j contributes ``weight_j·β_j`` (β = |ẑ| or the given bound)."""
        if self.rule in _SOFTMAX_ONLY:
            raise ValueError(f"rule {self.rule!r} is defined for softmax compositions only")
        if self.indicator not in (None, "strict", "bound"):
            raise ValueError(f"indicator {self.indicator!r} is defined for softmax compositions only")
        self._check_bound(bound)
        valid = np.ones(zhat.shape, dtype=bool)
        if self.rule == "none":
            return np.zeros(zhat.shape, dtype=bool)
        if self.rule == "all":
            return self._ablate(valid, zhat, valid, rng)
        if self.rule == "bound" or self.indicator == "bound":
            beta = np.broadcast_to(np.asarray(bound, dtype=np.float64), zhat.shape)
            if not np.all(np.isfinite(beta) & (beta >= 0)):
                raise ValueError("bound must be finite and non-negative")
        else:
            beta = np.abs(zhat)
        contribution = weight * beta
        if self.rule in ("strict", "bound"):
            mask = rules.threshold(contribution, valid, self.tau)  # type: ignore[arg-type]
        elif self.rule == "top_mu":
            n = zhat.shape[-1]
            counts = np.full(zhat.size // max(n, 1), self.mu, dtype=np.int64)
            rows = np.ascontiguousarray(contribution).reshape(-1, n)
            mask = kernels.top_rows(rows, valid.reshape(-1, n), counts).reshape(zhat.shape)
        else:
            mask = rules.budget(contribution, valid, float(self.rate))  # type: ignore[arg-type]
        return self._ablate(mask, zhat, valid, rng)


def causal_mask(n_q: int, n_k: int) -> np.ndarray:
    """``(n_q, n_k)`` boolean: query i (last n_q of n_k positions) sees key j iff ``j <= i + n_k − n_q``."""
    return np.tri(n_q, n_k, n_k - n_q, dtype=bool)


def _finite(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


class AttentionScores:
    """softmax ∘ (scaled QKᵀ): select scores, recompute their gathered dot products ``q_i·k_j`` precisely."""

    def __init__(self, config: LampConfig) -> None:
        self.config = config
        self._causal: tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray] | None = None

    def _causal_mask(self, n_q: int, n_k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The read-only causal mask of the last shape seen, with its row spans and dense flags
        (:func:`lampnum.lamp.kernels.spans`, :func:`~lampnum.lamp.kernels.dense_prefixes`), kept for the next call:
        a caller that keeps the composition across calls at one shape builds them once (~0.3 ms at 1024 × 1024)."""
        if self._causal is None or self._causal[0] != (n_q, n_k):
            allowed = causal_mask(n_q, n_k)
            allowed.setflags(write=False)
            span = kernels.spans(allowed)
            self._causal = ((n_q, n_k), allowed, span, kernels.dense_prefixes(allowed, span))
        return self._causal[1], self._causal[2], self._causal[3]

    def apply(
        self,
        q: Any,
        k: Any,
        scores: Any,
        *,
        causal: bool | np.ndarray = True,
        bound: Any = None,
        scale: float | None = None,
        rng: Any = None,
        in_place: bool = False,
    ) -> LampResult:
        """Correct the low-precision scaled scores ``scores ≈ scale·q kᵀ`` (``(..., n_q, n_k)``).

        ``q`` is ``(..., n_q, d)``, ``k`` ``(..., n_k, d)``; ``scale`` defaults to ``1/√d``. ``causal``: True
        (the causal mask of :func:`causal_mask`), False (every entry valid) or a boolean mask broadcast to the
        scores. ``bound`` is the componentwise error bound of the scaled scores (for the bound rule /
        indicator). The recompute rate counts the valid entries. ``in_place=True`` corrects ``scores`` itself
        when it is a C-contiguous float64 or float32 array (see :func:`recompute_product`: a recomputed value is
        rounded once to float32 there, and the rule reads the float32 scores as their exact float64 values, so
        the mask and the result are those of the float64 copy, rounded); otherwise a float64 copy is corrected.
        """
        q, k = np.asarray(q), np.asarray(k)
        given = np.asarray(scores)
        ours = in_place and given.dtype in (np.float64, np.float32) and given.flags.c_contiguous \
            and given.flags.writeable  # fmt: skip
        scores = given if ours else given.astype(np.float64)  # ours to correct
        span = dense = None  # spans and dense prefixes of allowed, when known
        if causal is True:
            allowed, span, dense = self._causal_mask(*scores.shape[-2:])
        elif causal is False:
            allowed = None
        else:
            allowed = causal
        factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
        fused = self._fused(q, k, scores, allowed, bound, factor, span, dense)
        if fused is not None:
            return fused
        # the causal mask itself stands for the valid entries when no score is −inf (no score-sized mask)
        valid = allowed if allowed is not None and not kernels.has_neg_inf(scores) else valid_mask(scores, allowed)
        if valid is None:
            valid = valid_mask(scores, None)
        mask = self.config.softmax_mask(scores, valid, bound, rng)
        return recompute_product(
            q, np.swapaxes(k, -1, -2), scores, mask, high=self.config.high, valid=valid, scale=factor,
            in_place=True,
        )  # fmt: skip

    def _fused(self, q: np.ndarray, k: np.ndarray, scores: np.ndarray, allowed: np.ndarray | None, bound: Any,
               factor: float, span: np.ndarray | None = None,
               dense: np.ndarray | None = None) -> LampResult | None:  # fmt: skip
        """The threshold rules (strict, relaxed, length) and top_mu by the strict indicator, with float64
        recomputation and a mask of the last two axes, in one pass over the scores
        (:func:`lampnum.lamp.kernels.fused_select_recompute`: each row decided, then its selected scores
        recomputed while it is in cache). The same mask, values and accounting as
        :func:`~lampnum.lamp.select` followed by :func:`recompute_product`; None where it does not apply. A
        valid NaN or +inf score raises ``ValueError`` as there, but rows before it may already be corrected
        (in place, the caller's array)."""
        config = self.config
        top = config.rule == "top_mu" and (config.indicator or "strict") == "strict"
        if not (config.rule in ("strict", "relaxed", "length") or top) or config.random or config.high is not None:
            return None
        config._check_bound(bound)
        if allowed is None or scores.ndim < 2 or q.ndim < 2 or k.ndim < 2 or scores.size == 0:
            return None
        m, n = scores.shape[-2:]
        allowed = np.asarray(allowed)
        if allowed.dtype != np.bool_ or allowed.shape != (m, n) or q.shape[-2] != m or k.shape[-2] != n \
                or q.shape[-1] != k.shape[-1] or q.dtype not in (np.float32, np.float64) \
                or k.dtype not in (np.float32, np.float64):  # fmt: skip
            return None
        batch = scores.shape[:-2]
        try:
            if np.broadcast_shapes(q.shape[:-2], k.shape[:-2], batch) != batch:
                return None
        except ValueError:
            return None
        depth = q.shape[-1]
        a3 = np.ascontiguousarray(q.reshape((-1, m, depth)))
        bt3 = np.ascontiguousarray(k.reshape((-1, n, depth)))
        leads = np.arange(max(scores.size // (m * n), 1))
        ia = np.ascontiguousarray(_operand_batch(leads, batch, q.shape[:-2]), dtype=np.int64)
        ib = np.ascontiguousarray(_operand_batch(leads, batch, k.shape[:-2]), dtype=np.int64)
        rows = scores.reshape(-1, n)
        mask, selected, valid, _ = kernels.fused_select_recompute(
            config.rule, rows, np.ascontiguousarray(allowed), float(config.tau or 0.0), float(config.length_ref or
            DEFAULT_LENGTH_REF), a3, bt3, ia, ib, factor, mu=int(config.mu or 0), span=span,
            dense=dense)  # fmt: skip
        return LampResult(values=scores, mask=mask.reshape(scores.shape), selected=selected, valid=valid,
                          inner=depth, total=scores.size)  # fmt: skip


class LogitsSoftmax:
    """softmax ∘ lm_head: select logits over the vocabulary, recompute the selected ``h·w_v`` precisely."""

    def __init__(self, config: LampConfig) -> None:
        self.config = config

    def apply(
        self, h: Any, w: Any, logits: Any, *, bias: Any = None, bound: Any = None, rng: Any = None
    ) -> LampResult:
        """Correct ``logits ≈ h @ w (+ bias)``: h ``(..., T, C)``, w ``(C, V)`` (GPT-2: ``wte.T``)."""
        logits = np.asarray(logits, dtype=np.float64)
        valid = valid_mask(logits)
        mask = self.config.softmax_mask(logits, valid, bound, rng)
        return recompute_product(h, w, logits, mask, high=self.config.high, valid=valid, bias=bias)


class GeluFc:
    """GELU ∘ fc, looking ahead to mlp_proj (LAMP-MATH.md §3).

    The error reaching mlp_proj's output is ``W₂ᵀ diag(GELU′(z)) e`` to first order.

    ``w_proj`` is mlp_proj's weight in the ``h @ W₂`` orientation, ``(n_hidden, n_out)`` (GPT-2's Conv1D
    layout), so the norm of the math convention's column j is the ℓ2 norm of row j here; the norms are
    computed once, here. ``approximate``: "tanh" (GPT-2's ``gelu_new``) or "none" (exact GELU).
    """

    def __init__(self, config: LampConfig, w_proj: Any, *, approximate: str = "tanh") -> None:
        self.config = config
        self.approximate = approximate
        gelu_derivative(np.zeros(1), approximate)  # validates approximate
        self.weight_norms = np.linalg.norm(np.asarray(w_proj, dtype=np.float64), axis=1)

    def contribution_weight(self, zhat: np.ndarray) -> np.ndarray:
        """``‖W₂[j, :]‖₂·|GELU′(ẑ_j)|``: multiply by β_j for component j's first-order contribution."""
        return self.weight_norms * np.abs(gelu_derivative(zhat, self.approximate))

    def apply(
        self, x: Any, w_fc: Any, b_fc: Any, z: Any, *, bound: Any = None, rng: Any = None
    ) -> LampResult:
        """Correct the low-precision fc output ``z ≈ x @ w_fc + b_fc`` (``(..., T, n_hidden)``)."""
        z = _finite("fc output", z)
        if z.shape[-1] != self.weight_norms.shape[0]:
            raise ValueError(
                f"fc output has {z.shape[-1]} features, mlp_proj takes {self.weight_norms.shape[0]}"
            )
        mask = self.config.contribution_mask(self.contribution_weight(z), z, bound, rng)
        return recompute_product(x, w_fc, z, mask, high=self.config.high, bias=b_fc)


class LayerNormResidual:
    """LayerNorm ∘ residual: select residual-stream components by the LayerNorm Jacobian column norm.

    ``gamma`` is the LayerNorm gain, ``eps`` its epsilon (GPT-2: 1e-5). The contribution of component j of a
    token is ``‖J_{:,j}‖₂·β_j`` with J the LayerNorm Jacobian at ẑ (outlier features, large |ẑ_j|, dominate
    under the strict rule's relative error model).
    """

    def __init__(self, config: LampConfig, gamma: Any, *, eps: float = 1e-5) -> None:
        self.config = config
        self.gamma = np.asarray(gamma, dtype=np.float64)
        self.eps = float(eps)

    def contribution_weight(self, zhat: np.ndarray) -> np.ndarray:
        """``‖J_LN(ẑ)[:, j]‖₂``: multiply by β_j for component j's first-order contribution."""
        return layernorm_column_norms(zhat, self.gamma, self.eps)

    def apply(
        self,
        x: Any,
        y: Any,
        z: Any,
        *,
        proj: tuple[Any, Any, Any] | None = None,
        bound: Any = None,
        rng: Any = None,
    ) -> LampResult:
        """Correct the low-precision residual sum ``z ≈ x + y`` (``(..., T, C)``).

        Without ``proj`` a selected component is recomputed as ``x_j + y_j`` in float64 (the residual add's
        rounding is the error corrected; one operation per component). With ``proj = (h, w, b)`` the branch
        output is recomputed too, ``y_j = h·w[:, j] + b_j`` (by the config's high precision), then added to
        ``x_j`` in float64.
        """
        z = _finite("residual", z)
        x = np.broadcast_to(np.asarray(x, dtype=np.float64), z.shape)
        y = np.asarray(y, dtype=np.float64)
        mask = self.config.contribution_mask(self.contribution_weight(z), z, bound, rng)
        if proj is not None:
            h, w, b = proj
            branch = recompute_product(h, w, y, mask, high=self.config.high, bias=b)
            y, inner = branch.values, branch.inner
        else:
            y, inner = np.broadcast_to(y, z.shape), 1
        values = z.copy()
        values[mask] = x[mask] + y[mask]
        return LampResult(
            values=values, mask=mask, selected=int(mask.sum()), valid=z.size, inner=inner, total=z.size
        )
