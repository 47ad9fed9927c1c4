"""Checkpoint loading: the safetensors reader against the safetensors library, and one clear error per defect.

Files with defects are built byte by byte here (``st_bytes``), independently of the reader under test.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lampnum.gpt2 as g
from lampnum.gpt2.safetensors_io import read_header, read_tensors
from lampnum.gpt2.weights import expected_shapes, random_params, write_hf_dir, write_npz

safetensors_numpy = pytest.importorskip("safetensors.numpy")

CODES = {np.dtype("<f2"): "F16", np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}


def st_bytes(tensors: dict[str, np.ndarray], header_patch: dict | None = None, pad: int = 0) -> bytes:
    """A safetensors file: tensors in the given order, header optionally patched (to lie), ``pad`` spaces."""
    header: dict = {"__metadata__": {"format": "pt"}}
    data, offset = b"", 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {
            "dtype": CODES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        data += raw
        offset += len(raw)
    for name, patch in (header_patch or {}).items():
        header[name] = {**header.get(name, {}), **patch} if isinstance(patch, dict) else patch
    text = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(text)) + text + data


def small_dir(tmp_path: Path, config, dtype=np.float32, prefix: str = "", **patch) -> Path:
    params = random_params(config, np.random.default_rng(0), std=0.3, dtype=dtype)
    tensors = {prefix + k: v for k, v in params.items()}
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "model.safetensors").write_bytes(st_bytes(tensors, **patch))
    return tmp_path


def test_reader_agrees_with_the_safetensors_library(tmp_path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "a": rng.normal(size=(3, 4)).astype(np.float16),
        "b": rng.normal(size=(5,)),
        "c": rng.normal(size=(2, 1, 3)).astype(np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "x.safetensors"
    safetensors_numpy.save_file(tensors, str(path))
    ours, theirs = read_tensors(path), safetensors_numpy.load_file(str(path))
    assert set(ours) == set(theirs)
    for k in theirs:
        assert ours[k].dtype == theirs[k].dtype and ours[k].flags.writeable
        np.testing.assert_array_equal(ours[k], theirs[k])


def test_bf16_is_widened_exactly(tmp_path) -> None:
    """BF16 bit patterns (0x3F80 = 1, 0xC040 = -3, 0x0001 = smallest subnormal, 0x7F7F = max) to float32."""
    bits = np.array([0x3F80, 0xC040, 0x0001, 0x7F7F, 0x8000], dtype="<u2")
    header = {"t": {"dtype": "BF16", "shape": [5], "data_offsets": [0, 10]}}
    text = json.dumps(header).encode()
    path = tmp_path / "b.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + bits.tobytes())
    got = read_tensors(path)["t"]
    assert got.dtype == np.float32
    expected = [1.0, -3.0, 2.0**-133, (2 - 2.0**-7) * 2.0**127, -0.0]
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))
    assert np.signbit(got[-1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("prefix", ["", "transformer."])
def test_clean_directory_loads(tmp_path, make_config, dtype, prefix) -> None:
    config = make_config()
    model = g.load(small_dir(tmp_path, config, dtype, prefix))
    assert all(a.dtype == dtype for a in model.params.values())
    assert set(model.params) == set(expected_shapes(config))


def test_legacy_attention_buffers_are_ignored(tmp_path, make_config) -> None:
    config = make_config()
    params = random_params(config, np.random.default_rng(0), std=0.3)
    params["h.0.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), dtype=np.float32))
    params["h.1.attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "model.safetensors").write_bytes(st_bytes(params))
    assert "h.0.attn.bias" not in g.load(tmp_path).params


@pytest.mark.parametrize(
    "defect",
    [
        ("missing key", {"header_patch": {"ln_f.bias": "DROP"}}, "missing key.*ln_f.bias"),
        (
            "mismatched shape",
            {"header_patch": {"h.1.mlp.c_fc.bias": {"shape": [64, 2]}}},
            r"h\.1\.mlp\.c_fc\.bias.*needs 512 bytes|h.1.mlp.c_fc.bias has shape",
        ),
        (
            "lying byte length",
            {"header_patch": {"wpe.weight": {"shape": [64, 33]}}},
            r"'wpe\.weight'.*needs .* bytes",
        ),
        (
            "offset past the end",
            {"header_patch": {"ln_f.bias": {"data_offsets": [10**9, 10**9 + 128]}}},
            "outside the data buffer",
        ),
        ("overlapping tensors", {"header_patch": {"ln_f.bias": {"data_offsets": [0, 128]}}}, "overlaps|gap"),
        ("unknown dtype", {"header_patch": {"ln_f.bias": {"dtype": "F17"}}}, "unknown dtype 'F17'"),
        ("boolean in shape", {"header_patch": {"ln_f.bias": {"shape": [True]}}}, "shape must be a list"),
        ("header not an object", {"header_patch": None}, None),
    ],
    ids=lambda d: d[0] if isinstance(d, tuple) else "",
)
def test_lying_header_is_a_clear_error(tmp_path, make_config, defect) -> None:
    _, patch, pattern = defect
    config = make_config()
    params = random_params(config, np.random.default_rng(0), std=0.3)
    hp = patch["header_patch"]
    if hp is None:  # a JSON array instead of an object
        text = b"[1, 2, 3]"
        raw = struct.pack("<Q", len(text)) + text
        pattern = "header must be a JSON object"
    else:
        for name, v in hp.items():
            if v == "DROP":
                params.pop(name)
        raw = st_bytes(params, {k: v for k, v in hp.items() if v != "DROP"})
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "model.safetensors").write_bytes(raw)
    with pytest.raises(g.CheckpointError, match=pattern) as err:
        g.load(tmp_path)
    assert "model.safetensors" in str(err.value)


def test_wrong_dtype_extra_key_and_trailing_bytes(tmp_path, make_config) -> None:
    config = make_config()
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    params = random_params(config, np.random.default_rng(0), std=0.3)
    cases = [
        ({**params, "ln_f.bias": np.arange(32, dtype=np.int64)}, b"", "ln_f.bias has dtype I64"),
        ({**params, "h.0.attn.c_attn.extra": np.zeros(3, np.float32)}, b"", "unexpected key.*c_attn.extra"),
        ({**params, "h.2.ln_1.weight": np.zeros(32, np.float32)}, b"", r"unexpected key.*h\.2\.ln_1"),
        (params, b"\0" * 7, "tensors end at byte .* but the file has"),
    ]
    for tensors, tail, pattern in cases:
        (tmp_path / "model.safetensors").write_bytes(st_bytes(tensors) + tail)
        with pytest.raises(g.CheckpointError, match=pattern):
            g.load(tmp_path)


def test_truncated_file_is_a_clear_error(tmp_path, make_config) -> None:
    path = small_dir(tmp_path, make_config())
    raw = (path / "model.safetensors").read_bytes()
    for n in (0, 5, 8, 100, len(raw) // 2, len(raw) - 1):
        (path / "model.safetensors").write_bytes(raw[:n])
        with pytest.raises(g.CheckpointError, match="truncated|too short|outside the data|tensors end"):
            g.load(path)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"model_type": "gpt2", "n_embd": 32}', "missing required key"),
        ('{"model_type": "llama", "n_embd": 32}', "model_type is 'llama'"),
    ],
)
def test_malformed_config_is_a_clear_error(tmp_path, make_config, text, pattern) -> None:
    path = small_dir(tmp_path, make_config())
    (path / "config.json").write_text(text)
    with pytest.raises(g.ConfigError, match=pattern):
        g.load(path)


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"n_head": 5}, "not divisible by n_head"),
        ({"n_layer": 0}, "n_layer must be a positive integer"),
        ({"n_embd": 32.0}, "n_embd must be a positive integer"),
        ({"activation_function": "relu"}, "activation_function 'relu' is not supported"),
        ({"add_cross_attention": True}, "add_cross_attention"),
        ({"n_ctx": 32}, "n_ctx = 32 disagrees"),
        ({"layer_norm_epsilon": "1e-5"}, "layer_norm_epsilon must be a finite number"),
        ({"n_layer": 3}, r"missing key.*h\.2\."),  # the config disagrees with the weights
    ],
)
def test_config_values_are_validated(tmp_path, make_config, change, pattern) -> None:
    config = make_config()
    path = small_dir(tmp_path, config)
    (path / "config.json").write_text(json.dumps({**config.to_dict(), **change}))
    with pytest.raises(g.CheckpointError, match=pattern):
        g.load(path)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.ckpt"])
def test_pickle_files_are_refused_unread(tmp_path, make_config, name) -> None:
    (tmp_path / "config.json").write_text(json.dumps(make_config().to_dict()))
    (tmp_path / name).write_bytes(b"\x80\x04 not even a pickle: must not be opened")
    for path in (tmp_path, tmp_path / name):
        with pytest.raises(g.CheckpointError, match=r"never loaded.*lampnum gpt2 export"):
            g.load(path)


def test_tied_head(tmp_path, make_config) -> None:
    config = make_config()
    params = random_params(config, np.random.default_rng(0), std=0.3)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "model.safetensors").write_bytes(st_bytes({**params, "lm_head.weight": params["wte.weight"]}))
    assert "lm_head.weight" not in g.load(tmp_path).params
    (tmp_path / "model.safetensors").write_bytes(
        st_bytes({**params, "lm_head.weight": params["wte.weight"] + 1})
    )
    with pytest.raises(g.CheckpointError, match="lm_head.weight differs from wte.weight"):
        g.load(tmp_path)


def test_untied_head_is_used(make_config) -> None:
    from lampnum.gpt2.mp_reference import mp_logits

    config = make_config(tie_word_embeddings=False, vocab_size=20, n_embd=16, n_inner=32)
    params = random_params(config, np.random.default_rng(0), std=0.3, dtype=np.float64)
    with pytest.raises(g.CheckpointError, match="lm_head.weight"):
        g.GPT2(config, {k: v for k, v in params.items() if k != "lm_head.weight"})
    ids = np.arange(5)
    got = g.GPT2(config, params).logits(ids)
    np.testing.assert_allclose(
        got, mp_logits(params, config, ids, dps=40), rtol=0, atol=1e-12 * np.abs(got).max()
    )


def test_npz_round_trip_and_sharded_directory(tmp_path, make_config) -> None:
    config = make_config()
    params = random_params(config, np.random.default_rng(0), std=0.3, dtype=np.float16)
    write_npz(tmp_path / "m.npz", config, params)
    loaded = g.load(tmp_path / "m.npz")
    assert loaded.config == config
    for k, v in params.items():
        assert loaded.params[k].dtype == np.float16
        np.testing.assert_array_equal(loaded.params[k], v)
    # the same parameters split over two shards by an index
    shard_dir = tmp_path / "sharded"
    shard_dir.mkdir()
    (shard_dir / "config.json").write_text(json.dumps(config.to_dict()))
    names = sorted(params)
    halves = {"model-00001-of-00002.safetensors": names[:10], "model-00002-of-00002.safetensors": names[10:]}
    for file, part in halves.items():
        safetensors_numpy.save_file({"transformer." + k: params[k] for k in part}, str(shard_dir / file))
    index = {"weight_map": {"transformer." + k: f for f, part in halves.items() for k in part}}
    (shard_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    for k, v in g.load(shard_dir).params.items():
        np.testing.assert_array_equal(v, params[k])
    index["weight_map"]["transformer.ln_f.bias"] = "../elsewhere.safetensors"
    (shard_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(g.CheckpointError, match="not a .safetensors file in this directory"):
        g.load(shard_dir)


def test_npz_defects(tmp_path, make_config) -> None:
    config = make_config()
    params = random_params(config, np.random.default_rng(0), std=0.3)
    write_npz(tmp_path / "m.npz", config, params)
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(g.CheckpointError, match="cut.npz"):
        g.load(tmp_path / "cut.npz")
    np.savez(
        tmp_path / "obj.npz",
        __format__=np.array("lampnum.gpt2/1"),
        __config__=np.array(json.dumps(config.to_dict())),
        **{**params, "wte.weight": np.array([None, 1])},
    )
    with pytest.raises(g.CheckpointError, match="obj.npz"):
        g.load(tmp_path / "obj.npz")
    np.savez(tmp_path / "foreign.npz", **params)
    with pytest.raises(g.CheckpointError, match="not a lampnum GPT-2 export"):
        g.load(tmp_path / "foreign.npz")


def test_non_finite_and_missing_paths(tmp_path, make_config) -> None:
    config = make_config()
    params = random_params(config, np.random.default_rng(0), std=0.3)
    params["h.1.mlp.c_proj.weight"][3, 4] = np.nan
    with pytest.raises(g.CheckpointError, match=r"h\.1\.mlp\.c_proj\.weight holds non-finite"):
        g.GPT2(config, params)
    with pytest.raises(g.CheckpointError, match="no such file"):
        g.load(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    with pytest.raises(g.CheckpointError, match="no model.safetensors"):
        g.load(tmp_path)


def test_written_directory_round_trips(tmp_path, make_config) -> None:
    config = make_config()
    params = random_params(config, np.random.default_rng(2), std=0.3)
    write_hf_dir(tmp_path, config, params)
    header, metadata = read_header(tmp_path / "model.safetensors")
    assert metadata == {"format": "pt"} and not any(k.startswith("transformer.") for k in header)
    for k, v in g.load(tmp_path).params.items():
        np.testing.assert_array_equal(v, params[k])


# ----------------------------------------------------------------------------------------------------------
# Fuzzing: any byte-level damage to a valid file either still loads or raises CheckpointError naming the file.

_CONFIG = g.GPT2Config(vocab_size=7, n_positions=5, n_embd=4, n_layer=1, n_head=2, n_inner=8)
_PARAMS = random_params(_CONFIG, np.random.default_rng(0), std=0.3, dtype=np.float16)
_VALID = st_bytes(_PARAMS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)
def test_fuzzed_files_load_or_raise_checkpoint_error(tmp_path_factory, data) -> None:
    raw = bytearray(_VALID)
    if data is not None:
        kind = data.draw(st.sampled_from(["truncate", "flip", "splice", "header"]))
        if kind == "truncate":
            raw = raw[: data.draw(st.integers(0, len(raw)))]
        elif kind == "flip":
            for _ in range(data.draw(st.integers(1, 4))):
                i = data.draw(st.integers(0, len(raw) - 1))
                raw[i] = data.draw(st.integers(0, 255))
        elif kind == "splice":
            i = data.draw(st.integers(0, len(raw)))
            raw[i:i] = data.draw(st.binary(max_size=16))
        else:  # a structurally plausible header with arbitrary entries
            value = st.one_of(
                st.integers(-2, 2**40),
                st.booleans(),
                st.none(),
                st.text(max_size=4),
                st.lists(st.integers(-1, 70), max_size=4),
            )
            entry = st.fixed_dictionaries(
                {
                    "dtype": st.sampled_from(["F16", "F32", "BF16", "I64", "X"]),
                    "shape": value,
                    "data_offsets": value,
                }
            )
            header = data.draw(
                st.dictionaries(
                    st.sampled_from(sorted(_PARAMS) + ["__metadata__", "zz"]),
                    st.one_of(entry, value),
                    max_size=12,
                )
            )
            text = json.dumps(header).encode()
            raw = bytearray(
                struct.pack("<Q", len(text)) + text + _VALID[8 + struct.unpack("<Q", _VALID[:8])[0] :]
            )
    path = tmp_path_factory.mktemp("fuzz")
    (path / "config.json").write_text(json.dumps(_CONFIG.to_dict()))
    (path / "model.safetensors").write_bytes(bytes(raw))
    try:
        model = g.load(path)
    except g.CheckpointError as e:
        assert str(path) in str(e)
    else:
        assert set(model.params) == set(expected_shapes(_CONFIG))
        assert all(np.isfinite(a).all() for a in model.params.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 10**6),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
)
def test_fuzzed_npz_loads_or_raises_checkpoint_error(tmp_path_factory, cut, flips) -> None:
    path = tmp_path_factory.mktemp("npz") / "m.npz"
    write_npz(path, _CONFIG, _PARAMS)
    raw = bytearray(path.read_bytes())
    for i, b in flips:
        raw[i % len(raw)] = b
    path.write_bytes(bytes(raw[: max(1, cut % (len(raw) + 1))]))
    try:
        g.load(path)
    except g.CheckpointError as e:
        assert str(path) in str(e)
