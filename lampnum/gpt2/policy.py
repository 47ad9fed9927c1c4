"""Per-site precision policies for the GPT-2 forward pass, and the context that applies one.

A :class:`Policy` says, for each *site* of the model, how it is computed:

- matrix-product sites ``qkv``, ``score`` (QKᵀ), ``value`` (attention·V), ``attn_proj``, ``fc``, ``mlp_proj``,
  ``lm_head``: a :class:`lampnum.MatmulSpec` (emulated by :func:`lampnum.matmul`), or ``None`` for the working
  dtype's own BLAS;
- elementwise sites ``softmax``, ``gelu``, ``layernorm``, ``residual``: a :class:`lampnum.Format` to which the
  stage's output is rounded, or ``None`` for no rounding beyond the working dtype.

``dtype`` is the working numpy dtype. With ``float64`` every stage is computed in float64 and rounded once, at
its output, to the site's format: a model of a kernel with wide internal arithmetic, not of step-by-step
low-precision arithmetic inside LayerNorm or softmax. With ``float32`` the elementwise stages are numpy's
float32 operations (``+ - * / sqrt`` correctly rounded; ``exp`` and ``tanh`` numpy's SIMD float32 functions,
within a few ulp), and native matrix products are float32 BLAS, whose summation order (blocking, FMA use,
threading) is not specified; use an emulated :class:`MatmulSpec` where the order matters.

Biases enter an emulated product as a last accumulation term: ``x @ W + b`` is computed as
``[x, 1] @ [W; b]``, so with strict accumulation the bias is added to the accumulator, rounded to the
accumulator format, then to ``output``.

Per-layer overrides (``Policy.with_site(site, value, layers=[...])``) take precedence over the model-wide
table; sites outside the blocks (the embedding's residual sum, ``ln_f``, ``lm_head``) have layer ``None`` and
use the table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Union, cast

import numpy as np

import lampnum as ln
from lampnum.emulate import MatmulSpec
from lampnum.formats import Format, as_format
from lampnum.lamp import LampConfig, LampResult

__all__ = [
    "ELEMENTWISE_SITES",
    "LAMP_SITES",
    "LampCount",
    "LampSite",
    "MATMUL_SITES",
    "PRESETS",
    "WEIGHT_SITES",
    "Context",
    "Policy",
    "RunStats",
    "quantize_weight",
]

MATMUL_SITES = ("qkv", "score", "value", "attn_proj", "fc", "mlp_proj", "lm_head")
ELEMENTWISE_SITES = ("softmax", "gelu", "layernorm", "residual")
#: Sites whose right operand is a weight matrix (the targets of ``Policy.weights``).
WEIGHT_SITES = ("qkv", "attn_proj", "fc", "mlp_proj")
#: The compositions LAMP can be applied to (``Policy.with_lamp``); see :data:`LAMP_IMPLEMENTED`.
LAMP_SITES = ("score", "fc", "residual", "lm_head")
#: The LAMP sites the forward pass implements (all of them).
LAMP_IMPLEMENTED = LAMP_SITES
_SOFTMAX_SITES = ("score", "lm_head")  # where the softmax-only rules (mass, relaxed, length) apply
PRESETS = ("fp64", "fp32", "bf16", "bf16-acc", "fp16", "e4m3-weights", "paper")
_DTYPES = ("float64", "float32")

Value = Union["MatmulSpec", "Format", None]


def _result_format(spec: MatmulSpec) -> Format:
    """The format of ``matmul``'s result under ``spec``: ``output`` when given, else the accumulator's."""
    return spec.output if spec.output is not None else spec.accumulator


def _fits_fp32(f: Format) -> bool:
    assert f.emin is not None  # Format fills it in at construction
    return f.p <= 24 and f.emax <= 127 and f.emin >= -126


def _check(site: str, value: Any, dtype: str) -> Any:
    if site in MATMUL_SITES:
        if value is None:
            return None
        if not isinstance(value, MatmulSpec):
            raise TypeError(f"site {site!r} takes a lampnum.MatmulSpec or None, got {type(value).__name__}")
        fmt = _result_format(value)
    elif site in ELEMENTWISE_SITES:
        if value is None:
            return None
        value = fmt = as_format(value)
    else:
        raise ValueError(f"unknown site {site!r}; sites are {MATMUL_SITES + ELEMENTWISE_SITES}")
    if dtype == "float32" and not _fits_fp32(fmt):
        raise ValueError(
            f"site {site!r} produces values of {fmt}, which float32 working arrays cannot hold exactly; "
            "use dtype='float64'"
        )
    return value


@dataclass(frozen=True)
class LampSite:
    """LAMP at one composition: the rule (:class:`lampnum.lamp.LampConfig`) and the seed of the ablation.

    ``seed`` seeds a fresh ``numpy.random.Generator`` at the start of every forward pass (one per site), so
    runs of the random ablation are reproducible; rules other than the ablation draw nothing.
    """

    config: LampConfig
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.config, LampConfig):
            raise TypeError(f"config must be a lampnum.lamp.LampConfig, got {type(self.config).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")


def _check_lamp_site(site: Any) -> None:
    if site in LAMP_SITES and site not in LAMP_IMPLEMENTED:
        raise ValueError(
            f"LAMP at {site!r} is not implemented yet; implemented LAMP sites: {LAMP_IMPLEMENTED}"
        )
    if site not in LAMP_SITES:
        raise ValueError(f"unknown LAMP site {site!r}; LAMP sites are {LAMP_SITES}")


@dataclass(frozen=True)
class Policy:
    """How each site of the forward pass is computed (see the module docstring for the semantics).

    ``matmul`` and ``elementwise`` list every site (missing ones are filled with ``None``); ``layers`` maps a
    block index to per-site overrides; ``weights``, when set, quantises the weight matrices of
    :data:`WEIGHT_SITES` once, with a per-tensor power-of-two scale (:func:`quantize_weight`).
    """

    name: str = "custom"
    dtype: str = "float64"
    matmul: Mapping[str, MatmulSpec | None] = field(default_factory=dict)
    elementwise: Mapping[str, Format | None] = field(default_factory=dict)
    layers: Mapping[int, Mapping[str, Value]] = field(default_factory=dict)
    weights: Format | None = None
    lamp: Mapping[str, LampSite] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        for table, sites in ((self.matmul, MATMUL_SITES), (self.elementwise, ELEMENTWISE_SITES)):
            unknown = set(table) - set(sites)
            if unknown:
                raise ValueError(f"unknown site(s) {sorted(unknown)}; expected some of {sites}")
        freeze = MappingProxyType
        object.__setattr__(
            self, "matmul", freeze({s: _check(s, self.matmul.get(s), self.dtype) for s in MATMUL_SITES})
        )
        object.__setattr__(
            self,
            "elementwise",
            freeze({s: _check(s, self.elementwise.get(s), self.dtype) for s in ELEMENTWISE_SITES}),
        )
        layers: dict[int, Mapping[str, Value]] = {}
        for layer, overrides in self.layers.items():
            if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
                raise ValueError(f"layer keys must be block indices >= 0, got {layer!r}")
            layers[layer] = freeze({s: _check(s, v, self.dtype) for s, v in overrides.items()})
        object.__setattr__(self, "layers", freeze(layers))
        weights = None if self.weights is None else as_format(self.weights)
        if weights is not None and self.dtype == "float32" and not _fits_fp32(weights):
            raise ValueError(f"weights in {weights} cannot be held exactly by float32 working arrays")
        object.__setattr__(self, "weights", weights)
        for site, value in self.lamp.items():
            _check_lamp_site(site)
            if not isinstance(value, LampSite):
                raise TypeError(f"lamp[{site!r}] must be a LampSite, got {type(value).__name__}")
        object.__setattr__(self, "lamp", freeze(dict(self.lamp)))

    def spec(self, site: str, layer: int | None) -> MatmulSpec | None:
        """The MatmulSpec of product ``site`` in block ``layer`` (None: native BLAS in the working dtype)."""
        if site not in MATMUL_SITES:
            raise ValueError(f"{site!r} is not a matrix-product site {MATMUL_SITES}")
        over = self.layers.get(layer, {}) if layer is not None else {}
        return cast("MatmulSpec | None", over[site]) if site in over else self.matmul[site]

    def format(self, site: str, layer: int | None) -> Format | None:
        """The format elementwise ``site`` in block ``layer`` rounds its output to (None: not rounded)."""
        if site not in ELEMENTWISE_SITES:
            raise ValueError(f"{site!r} is not an elementwise site {ELEMENTWISE_SITES}")
        over = self.layers.get(layer, {}) if layer is not None else {}
        return cast("Format | None", over[site]) if site in over else self.elementwise[site]

    @property
    def is_native(self) -> bool:
        """True when no site is emulated or rounded: the policy is plain numpy in ``dtype`` (fp64, fp32)."""
        tables = [self.matmul, self.elementwise, *self.layers.values()]
        return self.weights is None and not self.lamp and all(v is None for t in tables for v in t.values())

    def with_site(
        self, site: str, value: Value, layers: Iterable[int] | None = None, name: str | None = None
    ) -> Policy:
        """A copy with ``site`` set to ``value``, model-wide (``layers=None``) or for the given blocks only.

        A model-wide change leaves existing per-layer overrides of that site in place (they take precedence).
        """
        kw: dict[str, Any] = {"name": name or f"{self.name}+{site}"}
        if layers is None:
            table = "matmul" if site in MATMUL_SITES else "elementwise"
            kw[table] = {**getattr(self, table), site: value}
        else:
            new = {k: dict(v) for k, v in self.layers.items()}
            for layer in layers:
                new.setdefault(layer, {})[site] = value
            kw["layers"] = new
        return replace(self, **kw)

    def with_lamp(
        self,
        site: str,
        rule: str,
        *,
        tau: float | None = None,
        mu: int | None = None,
        rate: float | None = None,
        ablation: str | None = None,
        high: MatmulSpec | None = None,
        seed: int = 0,
        length_ref: float | None = None,
        indicator: str | None = None,
        name: str | None = None,
    ) -> Policy:
        """A copy with LAMP at composition ``site`` (every layer), replacing any LAMP already there.

        Sites: ``"score"`` (attention softmax∘QKᵀ: the rule selects from the low-precision *scaled* scores
        of each query row, over its causal entries; the selected ``q·k`` are recomputed by ``high`` and
        scaled, then the softmax is applied) and ``"lm_head"`` (output softmax∘logits: the rule selects over
        the vocabulary of each position; the selected ``h·w_v`` are recomputed); ``"fc"`` (GELU∘fc looking
        ahead to mlp_proj: fc outputs ranked per token by ``‖W_proj[j, :]‖₂·|GELU′(ẑ_j)|·|ẑ_j|``, the
        selected ``x·W_fc[:, j] + b_j`` recomputed) and ``"residual"`` (LayerNorm∘residual: components of each
        token's residual sum ranked by ``‖J_LN[:, j]‖₂·|ẑ_j|``, the selected ``x_j + δ_j`` recomputed in
        float64). The softmax-only rules (mass, relaxed, length) and indicators other than "strict" are
        refused at fc and residual (``ValueError``).

        ``rule``, ``tau``, ``mu``, ``rate``, ``length_ref``, ``indicator``: as :func:`lampnum.lamp.select`
        (checked here: a bad value raises ``ValueError``, a missing or unused parameter ``TypeError``).
        ``ablation="random"`` recomputes, per row, as many components as the rule selects, at uniformly random
        valid positions (drawn from ``numpy.random.default_rng(seed)``, fresh for every forward pass).
        ``high``: the recompute precision, a :class:`lampnum.MatmulSpec`, or None for float64 (exact
        products of float32 operands, sequential float64 sum). Recomputation reads the operands as the
        working dtype holds them: an ``input`` rounding of the site's low-precision spec is not applied
        (pass ``high=MatmulSpec(input=...)`` to keep it). The corrected values are rounded to the working
        dtype before the next stage.
        """
        _check_lamp_site(site)
        if ablation not in (None, "random"):
            raise ValueError(f"ablation must be None or 'random', got {ablation!r}")
        config = LampConfig(
            rule,
            tau=tau,
            mu=mu,
            rate=rate,
            length_ref=length_ref,
            indicator=indicator,
            random=ablation == "random",
            high=high,
        )
        if site not in _SOFTMAX_SITES and (
            rule in ("mass", "relaxed", "length") or indicator not in (None, "strict")
        ):
            raise ValueError(
                f"rule {rule!r} (indicator {indicator!r}) is defined for softmax compositions only; "
                f"LAMP at {site!r} takes strict, top_mu, budget (indicator 'strict'), none or all"
            )
        if config.needs_bound and site != "score":
            raise ValueError(
                "the bound-aware rule or indicator needs componentwise error bounds, which the forward pass "
                "supplies at the 'score' site only"
            )
        label = f"{rule}" + ("" if tau is None else f"(tau={tau})") + ("+random" if ablation else "")
        return replace(
            self,
            name=name or f"{self.name}+lamp[{site}:{label}]",
            lamp={**self.lamp, site: LampSite(config, seed)},
        )

    @classmethod
    def preset(cls, name: str, *, m_bits: int | None = None) -> Policy:
        """A named policy.

        - ``"fp64"``: the float64 reference (plain numpy float64; what ``policy=None`` means).
        - ``"fp32"``: plain numpy float32 (float32 BLAS, float32 elementwise).
        - ``"bf16"``: bf16 storage and accumulation: every product takes bf16 operands and accumulates
          strictly in bf16 (exact products, one rounding per step); every elementwise output is rounded to
          bf16.
        - ``"bf16-acc"``: fp32 operands, strict bf16 accumulation at every product site; elementwise outputs
          fp32.
        - ``"fp16"``: fp16 operands, strict fp32 accumulation, fp16 outputs; elementwise outputs fp16.
        - ``"e4m3-weights"``: float32 everywhere, the weights of the linear layers quantised to OCP e4m3 with
          a per-tensor power-of-two scale (those values are exact in float32, so float32 BLAS computes with
          them).
        - ``"paper"`` (``m_bits`` required, 1..23): the LAMP paper's setting. Only QKᵀ is emulated: fp32
          products, strict accumulation in an fp32 register rounded to ``m_bits`` explicit mantissa bits after
          every addition (``via="fp32"``); everything else float32.
        """
        fp32, bf16, fp16 = as_format("fp32"), as_format("bf16"), as_format("fp16")
        if m_bits is not None and name != "paper":
            raise ValueError("m_bits applies to the 'paper' preset only")
        if name == "fp64":
            return cls(name="fp64")
        if name == "fp32":
            return cls(name="fp32", dtype="float32")
        uniform = {  # one spec for every product, one format for every elementwise output
            "bf16": (MatmulSpec(input=bf16, accumulator=bf16), bf16),
            "bf16-acc": (MatmulSpec(input=fp32, accumulator=bf16), fp32),
            "fp16": (MatmulSpec(input=fp16, accumulator=fp32, output=fp16), fp16),
        }
        if name in uniform:
            spec, fmt = uniform[name]
            matmul, elementwise = dict.fromkeys(MATMUL_SITES, spec), dict.fromkeys(ELEMENTWISE_SITES, fmt)
            return cls(name=name, matmul=matmul, elementwise=elementwise)
        if name == "e4m3-weights":
            return cls(name="e4m3-weights", dtype="float32", weights=as_format("e4m3"))
        if name == "paper":
            if isinstance(m_bits, bool) or not isinstance(m_bits, int) or not 1 <= m_bits <= 23:
                raise ValueError(f"the 'paper' preset needs m_bits, an integer in 1..23, got {m_bits!r}")
            acc = Format(p=m_bits + 1, emax=127, name=f"fp32m{m_bits}")
            spec = MatmulSpec(product=fp32, accumulator=acc, via=fp32)
            return cls(name=f"paper(m={m_bits})", dtype="float32", matmul={"score": spec})
        raise ValueError(f"unknown preset {name!r}; presets are {PRESETS}")


def quantize_weight(w: np.ndarray, fmt: Format) -> np.ndarray:
    """Round ``w`` to ``fmt`` under a per-tensor power-of-two scale ``s``: ``round(w·s, fmt) / s`` (float64).

    ``s = 2^k`` with the largest ``k`` such that ``max|w|·s <= fmt.max``; scaling by a power of two is exact,
    so the result holds exactly the quantised values. An all-zero tensor is returned unchanged.
    """
    w = np.asarray(w, dtype=np.float64)
    amax = float(np.max(np.abs(w))) if w.size else 0.0
    if amax == 0.0:
        return w.copy()
    k = math.floor(math.log2(float(fmt.max) / amax))
    while np.ldexp(amax, k) > fmt.max:  # log2 is not exact near powers of two
        k -= 1
    return np.ldexp(ln.round(np.ldexp(w, k), fmt), -k)


@dataclass
class LampCount:
    """LAMP's accounting at one (layer, site), summed over calls: ``selected`` components recomputed out of
    ``valid`` existing ones (causal entries); ``total`` components in the full product, each of ``inner``
    multiply-adds."""

    selected: int = 0
    valid: int = 0
    total: int = 0
    inner: int = 0

    def add(self, result: LampResult) -> None:
        self.selected += result.selected
        self.valid += result.valid
        self.total += result.total
        self.inner = result.inner


Key = tuple[int | None, str]  # (layer, site); layer None outside the blocks


@dataclass
class RunStats:
    """What one forward pass measured.

    ``seconds`` and ``calls`` are per site, summed over layers (an elementwise site's time includes its
    rounding; LAMP's selection and recomputation are timed as ``"lamp:<site>"``). ``lamp`` maps
    ``(layer, site)`` (layer None for ``lm_head``) to LAMP's counts; from them, ``recompute_rate`` (selected
    / valid) and ``multiply_add_fraction`` (recomputed multiply-adds / the full product's multiply-adds,
    ``selected·inner / (total·inner)``) per ``(layer, site)``. Policies without LAMP leave them empty.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    recompute_rate: dict[Key, float] = field(default_factory=dict)
    multiply_add_fraction: dict[Key, float] = field(default_factory=dict)
    lamp: dict[Key, LampCount] = field(default_factory=dict)
    total_seconds: float = 0.0
    #: When a dict (``GPT2.run(..., keep_masks=True)``): the boolean recompute masks of every LAMP step, per
    #: ``(layer, site)`` in call order (score: [..., n_head, n_q, n_k]; lm_head: [..., n_seq, vocab_size]).
    masks: dict[Key, list[np.ndarray]] | None = None

    def add(self, site: str, seconds: float) -> None:
        self.seconds[site] = self.seconds.get(site, 0.0) + seconds
        self.calls[site] = self.calls.get(site, 0) + 1

    def add_lamp(self, layer: int | None, site: str, result: LampResult) -> None:
        """Count one LAMP step at ``(layer, site)`` and update that key's rates."""
        count = self.lamp.setdefault((layer, site), LampCount())
        count.add(result)
        if self.masks is not None:
            self.masks.setdefault((layer, site), []).append(result.mask)
        self.recompute_rate[(layer, site)] = count.selected / count.valid if count.valid else 0.0
        self.multiply_add_fraction[(layer, site)] = count.selected / count.total if count.total else 0.0

    def _sum(self, site: str | None) -> tuple[int, int, int, int]:
        counts = [c for (_, s), c in self.lamp.items() if site is None or s == site]
        selected = sum(c.selected for c in counts)
        valid = sum(c.valid for c in counts)
        return (
            selected,
            valid,
            sum(c.selected * c.inner for c in counts),
            sum(c.total * c.inner for c in counts),
        )

    def overall_recompute_rate(self, site: str | None = None) -> float:
        """Selected / valid components over layers (and over sites when ``site`` is None); 0 if none."""
        selected, valid, _, _ = self._sum(site)
        return selected / valid if valid else 0.0

    def overall_multiply_add_fraction(self, site: str | None = None) -> float:
        """Recomputed multiply-adds / the LAMP sites' full-product multiply-adds, summed like the rate."""
        _, _, done, full = self._sum(site)
        return done / full if full else 0.0


class Context:
    """A policy applied to one forward pass: every matrix product and elementwise stage of the model goes
    through it.

    The model's functions call :meth:`matmul` / :meth:`linear` for products and :meth:`elementwise` for
    stages; the context picks native BLAS or :func:`lampnum.matmul` from the policy, rounds stage outputs, and
    times each site into ``stats`` when one is given.
    """

    def __init__(self, policy: Policy, stats: RunStats | None = None) -> None:
        self.policy = policy
        self.stats = stats
        self.dtype = np.dtype(policy.dtype)
        self._rngs = {site: np.random.default_rng(v.seed) for site, v in policy.lamp.items()}

    def lamp(self, site: str) -> LampSite | None:
        """LAMP at composition ``site`` under the policy (None: no LAMP there)."""
        return self.policy.lamp.get(site)

    def rng(self, site: str) -> np.random.Generator:
        """The generator of ``site``'s random ablation, seeded once per context (one forward pass)."""
        return self._rngs[site]

    def lamp_done(self, layer: int | None, site: str, result: LampResult, t0: float) -> np.ndarray:
        """Record a LAMP step started at ``t0``; return its corrected values in the working dtype."""
        if self.stats is not None:
            self.stats.add_lamp(layer, site, result)
        self._timed(f"lamp:{site}", t0)
        return result.values.astype(self.dtype, copy=False)

    def _timed(self, site: str, t0: float) -> None:
        if self.stats is not None:
            self.stats.add(site, time.perf_counter() - t0)

    def _emulated(self, spec: MatmulSpec, a: np.ndarray, b: np.ndarray, lower: int | None = None) -> np.ndarray:
        return ln.matmul(a, b, spec, dtype=self.dtype, lower=lower)  # rounded to the working dtype (written there directly
        # by the fp32-register path: no float64 copy of a score-sized product)

    def matmul(
        self, site: str, layer: int | None, a: np.ndarray, b: np.ndarray, lower: int | None = None
    ) -> np.ndarray:
        """``a @ b`` (numpy broadcasting) as the policy computes ``site`` in block ``layer``. ``lower``: only the
        entries with ``j − i <= lower`` are needed (a causal product); an emulated site computes only those and
        holds 0 elsewhere (:func:`lampnum.matmul`), native BLAS computes everything."""
        t0 = time.perf_counter()
        spec = self.policy.spec(site, layer)
        out = a @ b if spec is None else self._emulated(spec, a, b, lower)
        self._timed(site, t0)
        return out

    def linear(self, site: str, layer: int | None, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``x @ w + b`` for ``x`` [..., k], ``w`` [k, n], ``b`` [n]; emulated sites accumulate ``b`` last."""
        t0 = time.perf_counter()
        spec = self.policy.spec(site, layer)
        x2 = x.reshape(-1, x.shape[-1])  # one BLAS call for all leading dimensions
        if spec is None:
            y = x2 @ w
            y += b
        else:
            ones = np.ones((x2.shape[0], 1), dtype=x2.dtype)
            y = self._emulated(
                spec, np.concatenate([x2, ones], axis=1), np.concatenate([w, b[None, :]], axis=0)
            )
        self._timed(site, t0)
        return y.reshape(*x.shape[:-1], w.shape[1])

    def elementwise(
        self, site: str, layer: int | None, fn: Callable[..., np.ndarray], *args: Any
    ) -> np.ndarray:
        """``fn(*args)`` in the working dtype, its output rounded to the format of ``site`` (if any)."""
        t0 = time.perf_counter()
        out = fn(*args)
        fmt = self.policy.format(site, layer)
        if fmt is not None:
            out = ln.round(out, fmt)
        self._timed(site, t0)
        return out
