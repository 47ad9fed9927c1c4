"""GPT-2 checkpoints: reading Hugging Face directories and lampnum's ``.npz``, validating, writing.

Parameters are kept under the checkpoint's own names, without the ``transformer.`` prefix that
``GPT2LMHeadModel`` adds: ``wte.weight`` [vocab_size, n_embd], ``wpe.weight`` [n_positions, n_embd], per block
``h.{i}.ln_1.weight`` …, ``ln_f.weight``, ``ln_f.bias``. The four linear layers of a block are
``transformers``' ``Conv1D`` and store their weight as [in, out] (``y = x @ W + b``), the transpose of
``nn.Linear``: ``h.{i}.attn.c_attn.weight`` [n_embd, 3·n_embd] (query, key, value side by side),
``h.{i}.attn.c_proj.weight`` [n_embd, n_embd], ``h.{i}.mlp.c_fc.weight`` [n_embd, n_inner],
``h.{i}.mlp.c_proj.weight`` [n_inner, n_embd]. The output head is tied to ``wte.weight``; a stored
``lm_head.weight`` [vocab_size, n_embd] must equal it (or the config must say ``tie_word_embeddings: false``).

Nothing is ever unpickled: ``pytorch_model.bin`` and other pickle-based files are refused with the command
that converts them. Every error is a :class:`CheckpointError` (a ``ValueError``) naming the file and, where
there is one, the key.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lampnum.gpt2.config import GPT2Config, read_config
from lampnum.gpt2.errors import CheckpointError
from lampnum.gpt2.safetensors_io import FLOAT_DTYPES, read_header, read_tensors

__all__ = [
    "CheckpointError",
    "NPZ_FORMAT",
    "PICKLE_SUFFIXES",
    "check_params",
    "expected_shapes",
    "export_hf",
    "random_params",
    "read_checkpoint",
    "write_hf_dir",
    "write_npz",
]

NPZ_FORMAT = "lampnum.gpt2/1"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_PREFIX = "transformer."
_FLOAT_NUMPY = (np.float16, np.float32, np.float64)
#: What numpy, zipfile and zlib raise on damaged .npz files.
_NPZ_FAILURES = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def _convert_hint(path: Path) -> str:
    return (
        f"{path}: pickle-based checkpoints are never loaded by lampnum (unpickling can run arbitrary code). "
        f"Convert it once with `lampnum gpt2 export {path.parent if path.is_file() else path} OUT_DIR` "
        "(needs the `hf` extra: pip install 'lampnum[hf]'), or save it with safetensors."
    )


def expected_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of a GPT-2 with ``config`` (with ``lm_head.weight`` if untied)."""
    d, f, v = config.n_embd, config.n_inner, config.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (v, d), "wpe.weight": (config.n_positions, d)}
    for i in range(config.n_layer):
        h = f"h.{i}."
        shapes.update(
            {
                h + "ln_1.weight": (d,),
                h + "ln_1.bias": (d,),
                h + "attn.c_attn.weight": (d, 3 * d),
                h + "attn.c_attn.bias": (3 * d,),
                h + "attn.c_proj.weight": (d, d),
                h + "attn.c_proj.bias": (d,),
                h + "ln_2.weight": (d,),
                h + "ln_2.bias": (d,),
                h + "mlp.c_fc.weight": (d, f),
                h + "mlp.c_fc.bias": (f,),
                h + "mlp.c_proj.weight": (f, d),
                h + "mlp.c_proj.bias": (d,),
            }
        )
    shapes.update({"ln_f.weight": (d,), "ln_f.bias": (d,)})
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (v, d)
    return shapes


def _is_buffer(name: str, n_layer: int) -> bool:
    """Buffers older ``transformers`` saved: the causal mask ``h.{i}.attn.bias``, and ``masked_bias``."""
    parts = name.split(".")
    return (
        len(parts) == 4
        and parts[0] == "h"
        and parts[1].isdigit()
        and int(parts[1]) < n_layer
        and parts[2] == "attn"
        and parts[3] in ("bias", "masked_bias")
    )


def _canonical_names(names: list[str], source: str) -> dict[str, str]:
    """Map stored name -> canonical name (``transformer.`` removed; ``lm_head.weight`` never has it)."""
    out: dict[str, str] = {}
    for name in names:
        canon = name[len(_PREFIX) :] if name.startswith(_PREFIX) else name
        if canon in out.values():
            raise CheckpointError(
                f"{source}: {canon!r} is stored twice (with and without the {_PREFIX!r} prefix)"
            )
        out[name] = canon
    return out


def _select(names: list[str], config: GPT2Config, source: str) -> dict[str, str]:
    """Check the stored names against ``config``; return stored -> canonical for the tensors to read."""
    canon = _canonical_names(names, source)
    shapes = expected_shapes(config)
    extra = sorted(
        s
        for s, c in canon.items()
        if c not in shapes and c != "lm_head.weight" and not _is_buffer(c, config.n_layer)
    )
    if extra:
        raise CheckpointError(
            f"{source}: unexpected key(s) {extra[:5]} for a GPT-2 with n_layer={config.n_layer}"
        )
    missing = sorted(set(shapes) - set(canon.values()))
    if missing:
        raise CheckpointError(f"{source}: missing key(s) {missing[:5]}{' …' if len(missing) > 5 else ''}")
    return {s: c for s, c in canon.items() if not _is_buffer(c, config.n_layer)}


def check_params(
    params: Mapping[str, np.ndarray], config: GPT2Config, source: str = "params"
) -> dict[str, np.ndarray]:
    """A validated copy of ``params``: names, shapes, dtypes and finiteness; a stored tied head resolved.

    Raises :class:`CheckpointError` naming the key. A stored ``lm_head.weight`` with ``tie_word_embeddings``
    must equal ``wte.weight`` exactly and is then dropped; the model always reads the head from ``wte.weight``
    when tied.
    """
    shapes = expected_shapes(config)
    params = {_canonical_names(list(params), source)[k]: v for k, v in params.items()}
    names = set(params)
    if config.tie_word_embeddings and "lm_head.weight" in params:
        head = params.pop("lm_head.weight")
        wte = params.get("wte.weight")
        if wte is None or head.shape != wte.shape or not np.array_equal(head, wte):
            raise CheckpointError(
                f"{source}: lm_head.weight differs from wte.weight but the config ties them "
                "(set tie_word_embeddings: false in config.json for an untied head)"
            )
        names.discard("lm_head.weight")
    if names != set(shapes):
        extra, missing = sorted(names - set(shapes)), sorted(set(shapes) - names)
        raise CheckpointError(f"{source}: unexpected key(s) {extra[:5]}, missing key(s) {missing[:5]}")
    for name, a in params.items():
        if not isinstance(a, np.ndarray) or a.dtype.type not in _FLOAT_NUMPY:
            what = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise CheckpointError(f"{source}: {name} has dtype {what}; expected float16, float32 or float64")
        if a.shape != shapes[name]:
            raise CheckpointError(
                f"{source}: {name} has shape {list(a.shape)}, expected {list(shapes[name])}"
            )
        if not np.all(np.isfinite(a)):
            raise CheckpointError(f"{source}: {name} holds non-finite values")
    return params


def _read_safetensors(files: Mapping[Path, set[str] | None], config: GPT2Config) -> dict[str, np.ndarray]:
    """Read the parameters from one file, or from the shards of an index (file -> the names it puts there).

    All headers are validated, and the names checked against ``config``, before any tensor data is read.
    """
    headers = {file: read_header(file)[0] for file in files}
    home: dict[str, Path] = {}
    for file, header in headers.items():
        listed = files[file]
        if listed is not None and set(header) != listed:
            raise CheckpointError(f"{file}: holds {sorted(set(header) ^ listed)[:5]} contrary to the index")
        for name in header:
            if name in home:
                raise CheckpointError(f"{file}: {name!r} is also stored in {home[name]}")
            home[name] = file
    source = str(next(iter(files))) if len(files) == 1 else str(next(iter(files)).parent)
    wanted = _select(list(home), config, source)
    shapes = expected_shapes(config)
    shapes["lm_head.weight"] = shapes["wte.weight"]
    for s, c in wanted.items():
        info = headers[home[s]][s]
        if info.dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{home[s]}: {s} has dtype {info.dtype}; expected one of {FLOAT_DTYPES}")
        if info.shape != shapes[c]:
            raise CheckpointError(f"{home[s]}: {s} has shape {list(info.shape)}, expected {list(shapes[c])}")
    params: dict[str, np.ndarray] = {}
    for file in files:
        mine = {s: c for s, c in wanted.items() if home[s] == file}
        params.update({mine[s]: a for s, a in read_tensors(file, mine, headers[file]).items()})
    return params


def _weight_files(path: Path) -> dict[Path, set[str] | None]:
    """The safetensors file(s) of a Hugging Face directory; a pickle-only one gets the conversion command."""
    single, index = path / "model.safetensors", path / "model.safetensors.index.json"
    if single.is_file():
        return {single: None}
    if not index.is_file():
        pickles = sorted(p for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(_convert_hint(pickles[0]))
        raise CheckpointError(
            f"{path}: no model.safetensors (or model.safetensors.index.json) in this directory"
        )
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise TypeError("weight_map must map tensor names to file names")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{index}: not a safetensors index with a weight_map ({type(e).__name__}: {e})"
        ) from None
    shards: dict[Path, set[str] | None] = {}
    for name, file in weight_map.items():
        if Path(file).name != file or not file.endswith(".safetensors"):
            raise CheckpointError(
                f"{index}: shard {file!r} for {name!r} is not a .safetensors file in this directory"
            )
        shards.setdefault(path / file, set()).add(name)  # type: ignore[union-attr]
    return shards


def _read_npz(path: Path) -> tuple[GPT2Config, dict[str, np.ndarray]]:
    try:  # the file is opened here, not by np.load, which leaks its handle when the zip is damaged
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if "__format__" not in z.files or str(z["__format__"]) != NPZ_FORMAT:
                raise CheckpointError(f"{path}: not a lampnum GPT-2 export (no __format__ = {NPZ_FORMAT!r})")
            if "__config__" not in z.files:
                raise CheckpointError(f"{path}: no __config__ entry")
            try:
                config = GPT2Config.from_dict(json.loads(str(z["__config__"])), source=f"{path}:__config__")
            except json.JSONDecodeError as e:
                raise CheckpointError(f"{path}: __config__ is not JSON: {e}") from None
            names = _select([k for k in z.files if not k.startswith("__")], config, str(path))
            params = {c: z[s] for s, c in names.items()}
    except CheckpointError:
        raise
    except _NPZ_FAILURES as e:  # object arrays (pickles) raise ValueError under allow_pickle=False
        raise CheckpointError(f"{path}: cannot read as a lampnum .npz: {type(e).__name__}: {e}") from None
    return config, params


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[GPT2Config, dict[str, np.ndarray]]:
    """Read a checkpoint; return ``(config, params)`` with canonical names and stored dtypes.

    The stored names, dtypes and (for safetensors, before any data is read) shapes are checked against
    ``config.json``; the values (finiteness, a stored tied head) are checked by :func:`check_params`, which
    :class:`~lampnum.gpt2.GPT2` applies when built from them: :func:`lampnum.gpt2.load` checks all once.

    ``path`` is a Hugging Face directory (``config.json`` + ``model.safetensors`` or a sharded
    ``model.safetensors.index.json``), a ``.safetensors`` file beside its ``config.json``, or a lampnum
    ``.npz``. F16, F32 and F64 tensors keep their dtype; BF16 becomes float32 (exactly).
    """
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        raise CheckpointError(_convert_hint(path))
    if path.is_dir():
        config = read_config(path / "config.json")
        params = _read_safetensors(_weight_files(path), config)
    elif path.suffix == ".npz" and path.is_file():
        config, params = _read_npz(path)
    elif path.suffix == ".safetensors" and path.is_file():
        config = read_config(path.parent / "config.json")
        params = _read_safetensors({path: None}, config)
    elif not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    else:
        raise CheckpointError(f"{path}: expected a GPT-2 directory, a .safetensors file or a lampnum .npz")
    return config, params


def write_npz(path: str | os.PathLike[str], config: GPT2Config, params: Mapping[str, np.ndarray]) -> None:
    """Write lampnum's ``.npz``: canonical names, ``__config__`` (JSON), ``__format__``; no pickles."""
    params = check_params(params, config)
    arrays: dict[str, Any] = {
        "__format__": np.array(NPZ_FORMAT),
        "__config__": np.array(json.dumps(config.to_dict())),
        **params,
    }
    np.savez(Path(path), **arrays)


def write_hf_dir(path: str | os.PathLike[str], config: GPT2Config, params: Mapping[str, np.ndarray]) -> None:
    """Write ``config.json`` + ``model.safetensors`` (names without prefix, as OpenAI's GPT-2 on the Hub).

    ``transformers.GPT2LMHeadModel.from_pretrained`` and :func:`read_checkpoint` both read the result. Needs
    the ``safetensors`` package (the ``gpt2`` extra).
    """
    from safetensors.numpy import save_file

    params = check_params(params, config)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    save_file(
        {k: np.ascontiguousarray(v) for k, v in params.items()},
        str(path / "model.safetensors"),
        metadata={"format": "pt"},
    )


def random_params(
    config: GPT2Config, rng: np.random.Generator, std: float = 0.02, dtype: type = np.float32
) -> dict[str, np.ndarray]:
    """Random parameters for ``config``: every entry N(0, std²), LayerNorm gains 1 + N(0, std²).

    ``std=0.02`` is GPT-2's initialisation scale; tests use larger values so that no parameter is neutral.
    """
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(config).items():
        a = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            a += np.float32(1.0)
        out[name] = a.astype(dtype, copy=False)
    return out


def export_hf(source: str, out: str | os.PathLike[str], dtype: str = "float32") -> Path:
    """Convert a GPT-2 that ``transformers`` can load (Hub id or directory, any of its formats) to lampnum's
    layout.

    ``out`` ending in ``.npz`` gets lampnum's ``.npz``; anything else becomes a directory with
    ``config.json``, ``model.safetensors`` and, when the source has one, ``tokenizer.json``. ``dtype`` is
    ``"float32"`` (exact for fp16/bf16/fp32 sources) or ``"float16"``. Needs the ``hf`` extra (torch,
    transformers); this is the one place where a pickle-based checkpoint may be read, by ``transformers``
    (``torch.load(weights_only=True)``), at your request.
    """
    try:
        import torch
        import transformers
    except ImportError:
        raise ImportError("export needs torch and transformers: pip install 'lampnum[hf]'") from None
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    hf = transformers.GPT2LMHeadModel.from_pretrained(source, dtype=torch.float32)
    config = GPT2Config.from_dict(hf.config.to_dict(), source=f"{source} (config)")
    with torch.no_grad():
        params = {k: v.detach().cpu().float().numpy().astype(dtype) for k, v in hf.state_dict().items()}
    params = {k: v for k, v in params.items() if not _is_buffer(k.removeprefix(_PREFIX), config.n_layer)}
    out = Path(out)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        write_npz(out, config, params)
        return out
    write_hf_dir(out, config, params)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError):
        return out  # no tokenizer files in the source
    tok.backend_tokenizer.save(str(out / "tokenizer.json"))
    return out
