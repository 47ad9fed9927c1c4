"""lampnum's GPT-2 against transformers' GPT2LMHeadModel: same checkpoint, float64 logits and greedy
generation.

The checkpoints are written by transformers itself (``save_pretrained``) from a randomly initialised model
whose parameters are then redrawn with non-neutral values, so the loader's name mapping, the Conv1D layout,
the q/k/v split, LayerNorm gains and biases, and the tied head are all exercised.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import lampnum.gpt2 as g  # noqa: E402
from lampnum.gpt2.generate import generate  # noqa: E402
from lampnum.gpt2.weights import export_hf, random_params, write_hf_dir  # noqa: E402

RTOL = 1e-10
TINY = dict(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4)


def hf_model(seed: int = 0, **overrides: object):
    """A transformers GPT-2 with every parameter redrawn (float64, eval mode)."""
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(**{**TINY, **overrides}, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0.0, 0.3 if p.ndim > 1 else 0.2)
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.add_(1.0)
    return model


def torch_logits(model, ids: np.ndarray) -> np.ndarray:
    batch = np.atleast_2d(ids)
    with torch.no_grad():
        out = model(torch.as_tensor(batch)).logits.numpy()
    return out if np.ndim(ids) == 2 else out[0]


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = hf_model()
    path = tmp_path_factory.mktemp("hf")
    model.save_pretrained(path)
    return model, path


def test_float64_logits_match_transformers(saved) -> None:
    hf, path = saved
    model = g.load(path)
    ids = np.random.default_rng(0).integers(0, TINY["vocab_size"], (3, 40))
    ref = torch_logits(hf, ids)
    assert max_rel(model.logits(ids), ref) <= RTOL  # batched
    assert max_rel(model.logits(ids[1]), ref[1]) <= RTOL  # one sequence, no batch axis


def test_float32_logits_close_to_transformers_float32(saved) -> None:
    hf, path = saved
    ids = np.random.default_rng(1).integers(0, TINY["vocab_size"], (2, 33))
    ref32 = torch_logits(copy.deepcopy(hf).float(), ids)  # a copy: the shared float64 model stays exact
    out = g.load(path).logits(ids, g.Policy.preset("fp32"))
    assert out.dtype == np.float32
    assert max_rel(out, ref32) <= 1e-5  # two float32 computations, different summation orders


@pytest.mark.parametrize(
    "overrides",
    [
        dict(n_inner=48, layer_norm_epsilon=1e-3),
        dict(scale_attn_by_inverse_layer_idx=True, n_layer=3),
        dict(scale_attn_weights=False, n_head=2, activation_function="gelu_pytorch_tanh"),
    ],
)
def test_config_variants_match_transformers(tmp_path, overrides) -> None:
    hf = hf_model(seed=3, **overrides)
    hf.save_pretrained(tmp_path)
    ids = np.random.default_rng(2).integers(0, TINY["vocab_size"], 20)
    assert max_rel(g.load(tmp_path).logits(ids), torch_logits(hf, ids)) <= RTOL


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_stored_dtypes_load_exactly(tmp_path, dtype) -> None:
    hf = hf_model(seed=4).to(getattr(torch, dtype))
    hf.save_pretrained(tmp_path)
    model = g.load(tmp_path)
    for name, p in hf.transformer.state_dict().items():
        if name in model.params:
            np.testing.assert_array_equal(
                model.params[name].astype(np.float64), p.double().numpy(), err_msg=name
            )
    ids = np.arange(12) % TINY["vocab_size"]
    assert max_rel(model.logits(ids), torch_logits(hf.double(), ids)) <= RTOL


def test_prefixed_and_unprefixed_names_load_the_same(saved, tmp_path) -> None:
    _, path = saved
    prefixed = g.load(path)
    config = prefixed.config
    write_hf_dir(tmp_path, config, prefixed.params)  # writes names without "transformer."
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["n_layer"] == config.n_layer
    plain = g.load(tmp_path)
    for name, a in prefixed.params.items():
        np.testing.assert_array_equal(plain.params[name], a)


def test_transformers_reads_what_lampnum_writes(tmp_path, make_config) -> None:
    config = make_config(n_layer=3)
    params = random_params(config, np.random.default_rng(5), std=0.3)
    write_hf_dir(tmp_path, config, params)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.float64).eval()
    ids = np.arange(30).reshape(2, 15)
    assert max_rel(g.GPT2(config, params).logits(ids), torch_logits(hf, ids)) <= RTOL


def test_greedy_generation_matches_transformers(saved) -> None:
    hf, path = saved
    model = g.load(path)
    prompt = np.array([[5, 17, 42, 3], [9, 0, 1, 60], [40, 2, 0, 12]])
    tokens = torch.as_tensor(prompt)
    with torch.no_grad():  # an explicit mask: else generate() takes id 0 (= pad_token_id) for padding
        ref = hf.generate(tokens, attention_mask=torch.ones_like(tokens), max_new_tokens=20, do_sample=False,
                          eos_token_id=None, pad_token_id=0).numpy()  # fmt: skip
    np.testing.assert_array_equal(generate(model, prompt, 20), ref)


def test_export_converts_a_pickle_checkpoint(tmp_path) -> None:
    """A pytorch_model.bin is refused by the loader, and `export` (through transformers) converts it."""
    hf = hf_model(seed=6)
    src = tmp_path / "pickled"
    src.mkdir()
    hf.config.save_pretrained(src)
    torch.save(hf.state_dict(), src / "pytorch_model.bin")
    with pytest.raises(g.CheckpointError, match="lampnum gpt2 export"):
        g.load(src)
    ids = np.arange(10)
    for out in (tmp_path / "converted", tmp_path / "converted.npz"):
        export_hf(str(src), out)
        assert (
            max_rel(g.load(out).logits(ids), torch_logits(hf, ids)) <= 1e-6
        )  # float32 export of float64 weights
