#!/usr/bin/env python3
"""Train the small GPT-2 that ships inside lampnum as its embedded default model.

This script builds everything the package stores under ``lampnum/gpt2/data/``:

* ``tokenizer.json``   byte-level BPE (``tokenizers``), trained on the training split only,
                       with one special token ``<|endoftext|>`` (id 0);
* ``config.json``      a standard Hugging Face GPT-2 config (``model_type: gpt2``);
* ``model.safetensors`` the weights in float16, Hugging Face key names, tied head
                       (``lm_head.weight`` is not stored: it is ``transformer.wte.weight``);
* ``eval_tokens.npy``  a held-out evaluation set, uint16 array of shape [n_seq, context];
* ``metrics.json``     losses, including the held-out loss computed in float64 from the
                       float16 weights exactly as shipped, with its protocol stated;
* ``MODEL_CARD.md``    corpus (with the licence of every source admitted), parameters, steps,
                       losses, samples and how to retrain;
* ``corpus.json``      the licence decision for every installed distribution (not shipped);
* ``train.log``        the full log of the run (not shipped).

Corpus: permissively licensed ``*.py`` files only (see LICENCE_RULE below): by default the standard
library (PSF licence) and, from the site-packages folder of the Python that runs this script, the
files that the dist-info ``RECORD`` of a distribution lists whose own ``METADATA`` declares a licence
on the permissive list (MIT, BSD, Apache-2.0, PSF, ISC, Unlicense, Zlib); NVIDIA/CUDA distributions,
proprietary, copyleft, other and unknown licences are excluded. Files are walked in sorted order.
Folders named ``test``, ``tests``, ``idle_test``, ``__pycache__``, ``site-packages`` and
``dist-packages`` below a root are skipped, and so are vendored copies of other projects (``_vendor``,
``third_party``, ...), as are files that are not UTF-8, empty, larger than ``--max-file-kib`` or with a
line longer than ``--max-line-chars`` characters (generated tables, minified data). Files with
identical content are kept once. Each file gets a key ``<root basename>/<relative path>``; files
are ordered by SHA-256 of ``"order:" + key`` and taken until ``--max-corpus-mib`` is reached, and a
file goes to the held-out split when SHA-256 of ``"split:" + key`` (first 8 bytes, big-endian)
modulo 1000 is below ``--heldout-permille``. The split is therefore by file and independent of
the machine's file system order.

Model: ``transformers.GPT2LMHeadModel`` (gelu_new, pre-LayerNorm, learned positions, tied head).
Training: AdamW, bf16 autocast, linear warm-up then cosine decay, random windows of
``context + 1`` tokens from the training stream (documents joined by ``<|endoftext|>``).
With ``--minutes`` the number of steps is calibrated from the measured step time and then fixed
before training starts (the model and optimizer are reset after calibration); ``--steps`` fixes it
directly, which is what the model card's retrain command uses.

Needs: torch, transformers, tokenizers, safetensors, numpy; a CUDA GPU is strongly advised
(it runs on CPU for smoke tests with tiny settings).

Example::

    python examples/train_small_gpt2.py --out out/gpt2 --minutes 4 --seed 1234
    python examples/train_small_gpt2.py --out out/corpus --dry-run   # corpus and licences only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EOT = "<|endoftext|>"
SKIPPED_DIRS = frozenset({"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages"})
SAMPLE_PROMPTS = ("def ", "import os\n", "class ", "for i in range(")
PROTOCOL = (
    "eval_tokens.npy is a uint16 array [n_seq, T]. The shipped float16 weights are loaded, cast to "
    "float64, and the model is run in eval mode (no dropout) on each row independently, from position 0, "
    "with no padding, no attention mask other than the causal one, and no past/cache. "
    "loss = mean over all rows s and all positions t = 0..T-2 of -log_softmax(logits[s, t])[tokens[s, t+1]] "
    "(natural log, float64 throughout)."
)


# --------------------------------------------------------------------------------------------- logging


class Log:
    """Print to stdout and append to a log file, with the seconds since start."""

    def __init__(self, path: str) -> None:
        self.t0 = time.time()
        self.fh = open(path, "w", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:8.1f}s] {msg}"
        print(line, flush=True)
        self.fh.write(line + "\n")
        self.fh.flush()

    def elapsed(self) -> float:
        return time.time() - self.t0


# ---------------------------------------------------------------------------------------------- corpus

STDLIB_ORIGIN = "Python standard library"
STDLIB_LICENCE = "PSF-2.0 (Python Software Foundation License, the CPython licence)"


@dataclass(frozen=True)
class SourceFile:
    key: str
    text: str
    origin: str = ""  # STDLIB_ORIGIN or the name of the distribution whose RECORD lists the file

    @property
    def nbytes(self) -> int:
        return len(self.text.encode("utf-8"))


@dataclass
class Corpus:
    roots: list[str]
    train: list[SourceFile]
    heldout: list[SourceFile]
    rejected: Counter = field(default_factory=Counter)
    n_eligible: int = 0
    eligible_bytes: int = 0
    digest: str = ""
    distributions: list[Distribution] = field(default_factory=list)


def default_corpus_roots() -> list[str]:
    """The standard library and site-packages folders of the running Python, those that exist."""
    paths = sysconfig.get_paths()
    roots: list[str] = []
    for name in ("stdlib", "purelib", "platlib"):
        p = os.path.realpath(paths[name])
        if os.path.isdir(p) and p not in roots:
            roots.append(p)
    return roots


def is_stdlib_root(root: str) -> bool:
    return os.path.realpath(root) == os.path.realpath(sysconfig.get_paths()["stdlib"])


def stable_hash(tag: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{tag}:{key}".encode()).digest()[:8], "big")


# ---------------------------------------------------------------------------------------------- licences
#
# Only permissively licensed code goes into the corpus. The standard library is under the PSF licence.
# A file below a site-packages root is taken only if the RECORD of an accepted distribution lists it
# (and no RECORD of an excluded distribution does); a distribution is accepted when its own
# metadata declares one of the licences below, decided in this order:
#   1. `License-Expression:` (SPDX): every term joined by AND, and at least one of those joined by OR,
#      must be on the list;
#   2. else `License:`: accepted when it names a licence on the list (a short name or an SPDX
#      expression as above), excluded when it names another licence (also where a full text names
#      one for a bundled component); other full licence texts and free text decide nothing and
#      fall through to
#   3. else the `Classifier: License :: ...` lines: at least one, and all on the list.
# Whatever the licence says, a distribution is excluded when its name starts with `nvidia` or
# `cupy` or contains `cuda`, or when its licence metadata (the three fields above) mentions NVIDIA
# or "proprietary". Anything undecided is excluded. Copies of other projects bundled inside a
# distribution (folders named in VENDORED_DIRS) are skipped, since their licences are their own.

PERMISSIVE_SPDX = {
    "MIT": "MIT",
    "BSD-2-CLAUSE": "BSD-2-Clause",
    "BSD-3-CLAUSE": "BSD-3-Clause",
    "APACHE-2.0": "Apache-2.0",
    "PSF-2.0": "PSF-2.0",
    "PYTHON-2.0": "Python-2.0",
    "ISC": "ISC",
    "UNLICENSE": "Unlicense",
    "ZLIB": "Zlib",
}
# an exception that only adds permissions to a licence on the list
PERMISSIVE_SPDX_EXCEPTIONS = {("APACHE-2.0", "LLVM-EXCEPTION")}
PERMISSIVE_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: BSD License": "BSD",
    "License :: OSI Approved :: Apache Software License": "Apache",
    "License :: OSI Approved :: Python Software Foundation License": "PSF",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
}
# short free-text `License:` values (lower case, whitespace collapsed, "licence" -> "license")
PERMISSIVE_NAMES = [
    (re.compile(r"(the )?(mit|expat)( license)?"), "MIT"),
    (re.compile(r"(the )?((new|modified|revised|simplified|[23][- ]clause) )?bsd( license)?"), "BSD"),
    (
        re.compile(r"bsd[- ]?[23][- ]?clause( license)?|bsd[- ][23]|bsd license \((new|modified|revised)\)"),
        "BSD",
    ),
    (re.compile(r"apache( software)?( license)?(,? (version |v)?2(\.0)?)?( license)?"), "Apache-2.0"),
    (re.compile(r"apache[- ]?2(\.0)?( license)?"), "Apache-2.0"),
    (
        re.compile(r"(psf|psfl|psf-2\.0|python-2\.0|python software foundation)( license)?( (version )?2)?"),
        "PSF",
    ),
    (re.compile(r"isc( license)?( \(iscl\))?|iscl"), "ISC"),
    (re.compile(r"(the )?unlicense( \(unlicense\))?"), "Unlicense"),
    (re.compile(r"zlib(/libpng)?( license)?"), "Zlib"),
]
NON_PERMISSIVE_TEXT = re.compile(
    r"\b(a?gpl|lgpl)(v?\d|-|\b)|gnu (affero |lesser |library )?general public|mozilla public|\bmpl[ -]?v?\d|"
    r"\beupl|eclipse public|\bcddl|\bsspl|business source|creative commons|\bcc-by|non-?commercial",
    re.IGNORECASE,
)
EXCLUDED_NAME = re.compile(r"^(nvidia|cupy)|cuda")
EXCLUDED_TEXT = re.compile(r"nvidia|proprietary", re.IGNORECASE)
VENDORED_DIRS = frozenset(
    {
        "_vendor",
        "vendor",
        "_vendored",
        "vendored",
        "extern",
        "_extern",
        "externals",
        "_externals",
        "third_party",
        "_third_party",
        "thirdparty",
    }
)


LICENCE_RULE = (
    "Only permissively licensed code: the Python standard library (PSF licence), plus the *.py files "
    "of those site-packages distributions whose own metadata (*.dist-info/METADATA) declares a licence "
    "on the list MIT, BSD-2-Clause, BSD-3-Clause (or plain BSD), Apache-2.0 (also WITH LLVM-exception), "
    "PSF-2.0/Python-2.0, ISC, Unlicense, Zlib. Decided per distribution from License-Expression (SPDX: "
    "every AND term and at least one OR alternative on the list), else from License (a short licence "
    "name or SPDX expression on the list accepts; a text that names another licence - GPL, LGPL, MPL, "
    "..., also for bundled components - excludes; other full licence texts and UNKNOWN decide "
    "nothing), else from the "
    "'Classifier: License :: ...' lines (at least one, all on the list). Excluded whatever the licence "
    "says: distributions named nvidia*, cupy* or containing 'cuda', and those whose licence metadata "
    "mentions NVIDIA or 'proprietary'; everything else (MPL-2.0, GPL/LGPL, 0BSD, CC0-1.0, HPND, "
    "unknown, ...) is excluded too. A site-packages file is taken only if the dist-info RECORD of an "
    "accepted distribution lists it and no RECORD of an excluded one does; folders named "
    + ", ".join(sorted(VENDORED_DIRS))
    + " (copies of other projects bundled inside a distribution, under their own licences) are skipped."
)


@dataclass
class Distribution:
    name: str
    version: str
    dist_info: str
    accepted: bool
    licence: str  # the licence string that decided (or the reason's subject)
    licence_field: str  # License-Expression, License, Classifier, or "" when nothing decided
    reason: str  # why excluded ("" when accepted)
    py_files: set[str] = field(default_factory=set)  # .py paths relative to the root, from RECORD


def normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def spdx_permissive(expr: str) -> tuple[bool | None, list[str]]:
    """Evaluate an SPDX licence expression against PERMISSIVE_SPDX.

    Returns (True/False, the identifiers not on the list), or (None, []) when `expr` does not
    parse as an SPDX expression."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0
    others: list[str] = []

    def peek() -> str | None:
        return tokens[pos].upper() if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end")
        pos += 1
        return tokens[pos - 1]

    def ident() -> str:
        tok = take()
        if tok.upper() in ("AND", "OR", "WITH") or not re.fullmatch(r"[A-Za-z0-9.+:-]+", tok):
            raise ValueError(tok)
        return tok

    def atom() -> bool:
        if peek() == "(":
            take()
            value = disjunction()
            if take() != ")":
                raise ValueError("expected )")
            return value
        lic = ident()
        if peek() == "WITH":
            take()
            exc = ident()
            ok = (lic.upper(), exc.upper()) in PERMISSIVE_SPDX_EXCEPTIONS
            if not ok:
                others.append(f"{lic} WITH {exc}")
            return ok
        ok = lic.upper() in PERMISSIVE_SPDX
        if not ok:
            others.append(lic)
        return ok

    def conjunction() -> bool:
        value = atom()
        while peek() == "AND":
            take()
            value = atom() and value
        return value

    def disjunction() -> bool:
        value = conjunction()
        while peek() == "OR":
            take()
            value = conjunction() or value
        return value

    try:
        value = disjunction()
        if pos != len(tokens) or not tokens:
            raise ValueError("trailing tokens")
    except ValueError:
        return None, []
    return value, others


def classify_licence_text(text: str) -> tuple[bool | None, str]:
    """A free-text `License:` value: (True, name) on the list, (False, why) another licence, (None, "")
    when it decides nothing (empty, UNKNOWN, a full licence text without a name we can trust)."""
    first = text.strip().split("\n")[0].strip()
    value, others = None, []
    one_line = "\n" not in text.strip() and len(first) <= 80
    if one_line:
        norm = re.sub(r"\s+", " ", first.lower().replace("licence", "license")).strip(" .;")
        for pattern, name in PERMISSIVE_NAMES:
            if pattern.fullmatch(norm):
                return True, name
        value, others = spdx_permissive(first)
        if value:
            return True, first
    if one_line and value is False and any(re.search(r"\d|-", o) for o in others):
        return False, "not on the list: " + ", ".join(others)
    hit = NON_PERMISSIVE_TEXT.search(text)
    if hit:
        return False, f"License text names a licence not on the list ({hit.group(0)!r})"
    return None, ""


def decide_licence(meta: Any) -> tuple[bool, str, str, str]:
    """(accepted, licence string, field, reason) from a distribution's METADATA message."""
    expression = (meta.get("License-Expression") or "").strip()
    text = (meta.get("License") or "").strip()
    classifiers = [
        c.strip() for c in (meta.get_all("Classifier") or []) if c.strip().startswith("License ::")
    ]
    everything = "\n".join([expression, text, *classifiers])
    if EXCLUDED_TEXT.search(everything):
        word = EXCLUDED_TEXT.search(everything).group(0)
        return (
            False,
            expression or text.split("\n")[0][:80] or "; ".join(classifiers),
            "",
            (f"licence metadata mentions {word!r}"),
        )
    if expression:
        value, others = spdx_permissive(expression)
        if value:
            return True, expression, "License-Expression", ""
        if value is None:
            return False, expression, "License-Expression", "License-Expression does not parse"
        return False, expression, "License-Expression", "not on the list: " + ", ".join(others)
    if text and text.upper() != "UNKNOWN":
        value, why = classify_licence_text(text)
        if value:
            return True, text.split("\n")[0].strip(), "License", ""
        if value is False:
            return False, text.split("\n")[0].strip()[:80], "License", why
    specific = [c for c in classifiers if c != "License :: OSI Approved"]
    if not specific:
        return False, "", "", "no licence metadata"
    names = [c.split(" :: ")[-1] for c in specific]
    if all(c in PERMISSIVE_CLASSIFIERS for c in specific):
        return True, "; ".join(names), "Classifier", ""
    return (
        False,
        "; ".join(names),
        "Classifier",
        "classifier not on the list: "
        + "; ".join(n for c, n in zip(specific, names, strict=True) if c not in PERMISSIVE_CLASSIFIERS),
    )


def scan_distributions(root: str) -> list[Distribution]:
    """The distributions installed in a site-packages-like root, each with its licence decision and
    the .py files its RECORD lists."""
    import csv
    import email

    dists: list[Distribution] = []
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if entry.endswith(".egg-info"):
            name = entry[: -len(".egg-info")]
            dists.append(Distribution(name, "", entry, False, "", "", "no RECORD (egg-info)"))
            continue
        if not entry.endswith(".dist-info") or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, "METADATA"), encoding="utf-8", errors="replace") as fh:
                meta = email.message_from_file(fh)
        except OSError:
            dists.append(Distribution(entry, "", entry, False, "", "", "no METADATA"))
            continue
        name = (meta.get("Name") or entry).strip()
        version = (meta.get("Version") or "").strip()
        accepted, licence, field_name, reason = decide_licence(meta)
        if EXCLUDED_NAME.search(normalise_name(name)):
            accepted, reason = False, "NVIDIA/CUDA distribution (by name)"
        py_files: set[str] = set()
        try:
            with open(os.path.join(path, "RECORD"), encoding="utf-8", newline="") as fh:
                for row in csv.reader(fh):
                    if not row:
                        continue
                    rel = os.path.normpath(row[0])
                    if rel.endswith(".py") and not rel.startswith(".."):
                        py_files.add(rel)
        except OSError:
            accepted, reason = False, "no RECORD"
        dists.append(Distribution(name, version, entry, accepted, licence, field_name, reason, py_files))
    return dists


def read_source(path: str, max_bytes: int, max_line_chars: int) -> tuple[str | None, str]:
    """Return (text, "") for an accepted file, or (None, reason)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None, "unreadable"
    if size > max_bytes:
        return None, "too_large"
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None, "not_utf8"
    text = text.replace("\r\n", "\n")
    if not text.strip():
        return None, "empty"
    if EOT in text:
        return None, "contains_eot"
    if max(len(line) for line in text.split("\n")) > max_line_chars:
        return None, "long_line"
    return text, ""


def walk_python_files(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and d not in VENDORED_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.endswith(".py") and os.path.isfile(path):
                yield path


def build_corpus(
    roots: Sequence[str],
    max_file_bytes: int,
    max_line_chars: int,
    max_corpus_bytes: int,
    heldout_permille: int,
) -> Corpus:
    rejected: Counter = Counter()
    seen: set[str] = set()
    eligible: list[SourceFile] = []
    all_dists: list[Distribution] = []
    for root in roots:
        label = os.path.basename(os.path.normpath(root))
        owners: dict[str, list[Distribution]] | None = None
        if not is_stdlib_root(root):
            dists = scan_distributions(root)
            if not any(d.dist_info.endswith(".dist-info") for d in dists):
                raise SystemExit(
                    f"corpus root {root} is neither the standard library nor a folder of installed "
                    "distributions (*.dist-info): its licence cannot be checked"
                )
            all_dists += dists
            owners = {}
            for d in dists:
                for rel in d.py_files:
                    owners.setdefault(rel, []).append(d)
        for path in walk_python_files(root):
            rel = os.path.relpath(path, root)
            key = f"{label}/{rel}"
            origin = STDLIB_ORIGIN
            if owners is not None:
                owned_by = owners.get(rel)
                if not owned_by:
                    rejected["licence_not_in_any_record"] += 1
                    continue
                if not all(d.accepted for d in owned_by):
                    rejected["licence_excluded_distribution"] += 1
                    continue
                origin = min(d.name for d in owned_by)
            text, reason = read_source(path, max_file_bytes, max_line_chars)
            if text is None:
                rejected[reason] += 1
                continue
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if digest in seen:
                rejected["duplicate"] += 1
                continue
            seen.add(digest)
            eligible.append(SourceFile(key, text, origin))
    eligible_bytes = sum(f.nbytes for f in eligible)
    chosen: list[SourceFile] = []
    total = 0
    for f in sorted(eligible, key=lambda f: (stable_hash("order", f.key), f.key)):
        if total + f.nbytes > max_corpus_bytes:
            rejected["over_corpus_cap"] += 1
            continue
        chosen.append(f)
        total += f.nbytes
    chosen.sort(key=lambda f: f.key)
    heldout = [f for f in chosen if stable_hash("split", f.key) % 1000 < heldout_permille]
    train = [f for f in chosen if stable_hash("split", f.key) % 1000 >= heldout_permille]
    h = hashlib.sha256()
    for f in chosen:
        h.update(f.key.encode() + b"\0" + hashlib.sha256(f.text.encode()).digest())
    return Corpus(
        list(roots), train, heldout, rejected, len(eligible), eligible_bytes, h.hexdigest(), all_dists
    )


def top_level_counts(files: Sequence[SourceFile]) -> list[tuple[str, int, int]]:
    """(root/top-level name, files, bytes), largest first."""
    files_by: Counter = Counter()
    bytes_by: Counter = Counter()
    for f in files:
        parts = f.key.split("/")
        top = "/".join(parts[:2]) if len(parts) > 2 else parts[0] + "/(top-level modules)"
        files_by[top] += 1
        bytes_by[top] += f.nbytes
    return sorted(((k, files_by[k], bytes_by[k]) for k in files_by), key=lambda r: (-r[2], r[0]))


def licence_report(corpus: Corpus) -> dict[str, Any]:
    """What went into the corpus, by origin, with each distribution's licence decision."""
    files_by: Counter = Counter()
    bytes_by: Counter = Counter()
    split_by: dict[str, Counter] = {}
    for split, files in (("train", corpus.train), ("heldout", corpus.heldout)):
        for f in files:
            files_by[f.origin] += 1
            bytes_by[f.origin] += f.nbytes
            split_by.setdefault(f.origin, Counter())[split] += 1
    accepted = [
        {
            "name": STDLIB_ORIGIN,
            "version": platform.python_version(),
            "licence": STDLIB_LICENCE,
            "field": "",
            "files": files_by[STDLIB_ORIGIN],
            "bytes": bytes_by[STDLIB_ORIGIN],
        }
    ]
    excluded = []
    for d in sorted(corpus.distributions, key=lambda d: normalise_name(d.name)):
        if d.accepted:
            accepted.append(
                {
                    "name": d.name,
                    "version": d.version,
                    "licence": d.licence,
                    "field": d.licence_field,
                    "files": files_by[d.name],
                    "bytes": bytes_by[d.name],
                }
            )
        else:
            excluded.append({"name": d.name, "version": d.version, "reason": d.reason, "licence": d.licence})
    return {"accepted": accepted, "excluded": excluded}


def licence_table_lines(report: dict[str, Any]) -> list[str]:
    """Markdown: the accepted distributions as a table, the excluded ones as a list."""
    lines = [
        "| distribution | version | licence (as declared) | from | files | bytes |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for a in report["accepted"]:
        lic = a["licence"].replace("|", "/")
        lines.append(
            f"| {a['name']} | {a['version']} | {lic} | {a['field'] or '-'} "
            f"| {a['files']:,} | {a['bytes']:,} |"
        )
    lines += ["", f"Excluded distributions ({len(report['excluded'])}), with the reason:", ""]
    lines += [f"- {e['name']}: {e['reason']}" for e in report["excluded"]]
    return lines


# ------------------------------------------------------------------------------------------- tokenizer


def train_tokenizer(files: Sequence[SourceFile], vocab_size: int, max_bytes: int) -> Any:
    """Byte-level BPE trained on (at most max_bytes of) the training files, in key order."""
    from tokenizers import ByteLevelBPETokenizer

    def texts() -> Iterator[str]:
        total = 0
        for f in files:
            if total >= max_bytes:
                return
            total += f.nbytes
            yield f.text

    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train_from_iterator(
        texts(), vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=[EOT]
    )
    return tok


def encode_files(tokenizer: Any, files: Sequence[SourceFile], eot_id: int, chunk: int = 512) -> np.ndarray:
    """Concatenate the files' token ids, each file followed by <|endoftext|>, as uint16."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    parts: list[np.ndarray] = []
    eot = np.array([eot_id], dtype=np.uint16)
    for i in range(0, len(files), chunk):
        for enc in encode([f.text for f in files[i : i + chunk]]):
            parts.append(np.asarray(enc.ids, dtype=np.uint16))
            parts.append(eot)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def windows(stream: np.ndarray, length: int, count: int) -> np.ndarray:
    """`count` non-overlapping windows of `length` tokens, evenly spaced over the stream."""
    n = len(stream) // length
    if n == 0:
        raise ValueError("held-out stream shorter than one window")
    idx = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))
    return np.stack([stream[i * length : (i + 1) * length] for i in idx])


# ----------------------------------------------------------------------------------------------- model


def make_config(args: argparse.Namespace, vocab_size: int, eot_id: int) -> Any:
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=args.context,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        activation_function="gelu_new",
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        layer_norm_epsilon=1e-5,
        initializer_range=0.02,
        tie_word_embeddings=True,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
    )


def lr_at(step: int, total: int, peak: float, warmup: int, floor_frac: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def make_optimizer(model: Any, lr: float, weight_decay: float, fused: bool) -> Any:
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=fused)


def mean_loss(model: Any, data: np.ndarray, device: str, batch: int, autocast: bool) -> float:
    """Mean next-token loss over rows of `data` [n, T] (positions 0..T-2 predict 1..T-1)."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = torch.from_numpy(data[i : i + batch].astype(np.int64)).to(device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=x, use_cache=False).logits
            lp = F.log_softmax(logits.double(), dim=-1)[:, :-1]
            nll = -lp.gather(-1, x[:, 1:, None]).squeeze(-1)
            total += float(nll.sum())
            count += nll.numel()
    model.train()
    return total / count


@dataclass
class TrainResult:
    steps: int
    tokens_seen: int
    train_seconds: float
    curve: list[dict[str, float]]
    final_train_loss_ema: float
    compiled: bool
    step_seconds: float


def train(
    model: Any,
    train_tokens: np.ndarray,
    heldout_eval: np.ndarray,
    args: argparse.Namespace,
    device: str,
    log: Log,
) -> TrainResult:
    import torch
    import torch.nn.functional as F

    cuda = device == "cuda"
    T, B = args.context, args.batch_size
    vocab = model.config.vocab_size
    data = torch.from_numpy(train_tokens.astype(np.int32)).to(device)
    ar = torch.arange(T + 1, device=device)
    max_start = len(train_tokens) - T - 1

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = model(input_ids=x, use_cache=False).logits
        return F.cross_entropy(logits.float().view(-1, vocab), y.reshape(-1))

    step_fn = loss_fn
    compiled = False
    if args.compile and cuda:
        step_fn = torch.compile(loss_fn)
        compiled = True

    def reset(seed: int) -> tuple[Any, torch.Generator]:
        torch.manual_seed(seed)
        gen = torch.Generator(device=device)
        gen.manual_seed(seed + 1)
        return make_optimizer(model, args.lr, args.weight_decay, fused=cuda), gen

    def one_step(opt: Any, gen: torch.Generator, lr: float) -> torch.Tensor:
        starts = torch.randint(0, max_start, (B,), device=device, generator=gen)
        chunk = data[starts[:, None] + ar[None, :]].long()
        loss = step_fn(chunk[:, :-1], chunk[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    initial_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()

    # calibration (and compilation), then reset to the initial weights
    opt, gen = reset(args.seed)
    t0 = time.time()
    try:
        one_step(opt, gen, 0.0)
        sync()
    except Exception as exc:  # torch.compile can fail on unusual stacks: fall back to eager
        if not compiled:
            raise
        log(f"torch.compile failed ({type(exc).__name__}: {exc}); falling back to eager")
        step_fn, compiled = loss_fn, False
        opt, gen = reset(args.seed)
        one_step(opt, gen, 0.0)
        sync()
    log(f"first step (compile={compiled}) took {time.time() - t0:.1f}s")
    for _ in range(5):
        one_step(opt, gen, 0.0)
    sync()
    n_cal = 20
    t0 = time.time()
    for _ in range(n_cal):
        one_step(opt, gen, 0.0)
    sync()
    step_seconds = (time.time() - t0) / n_cal
    log(f"calibrated step time {step_seconds * 1e3:.1f} ms ({B * T / step_seconds / 1e6:.2f} M tokens/s)")

    if args.steps:
        total_steps = args.steps
    else:
        budget = args.minutes * 60.0
        if args.max_wall_minutes:
            budget = min(budget, args.max_wall_minutes * 60.0 - log.elapsed() - args.reserve_seconds)
        total_steps = max(10, int(budget / step_seconds))
        log(f"training budget {budget:.0f}s -> {total_steps} steps")
    warmup = max(1, int(args.warmup_frac * total_steps))
    eval_every = max(1, total_steps // args.n_evals)

    with torch.no_grad():
        model.load_state_dict(initial_state)
    opt, gen = reset(args.seed)

    curve: list[dict[str, float]] = []
    pending: list[torch.Tensor] = []
    ema = None
    t_start = time.time()
    for step in range(total_steps):
        lr = lr_at(step, total_steps, args.lr, warmup, args.min_lr_frac)
        pending.append(one_step(opt, gen, lr))
        last = step == total_steps - 1
        do_log = (step + 1) % args.log_every == 0 or last
        do_eval = (step + 1) % eval_every == 0 or last
        if do_log or do_eval:
            losses = torch.stack(pending).float().cpu().tolist()
            pending.clear()
            for v in losses:
                ema = v if ema is None else 0.98 * ema + 0.02 * v
        if do_log:
            log(f"step {step + 1}/{total_steps} lr {lr:.2e} loss {losses[-1]:.4f} ema {ema:.4f}")
        if do_eval:
            held = mean_loss(model, heldout_eval, device, args.eval_batch, autocast=cuda)
            curve.append(
                {
                    "step": step + 1,
                    "tokens": (step + 1) * B * T,
                    "train_loss_ema": float(ema),
                    "heldout_loss": held,
                    "seconds": time.time() - t_start,
                }
            )
            log(f"eval step {step + 1}: train(ema) {ema:.4f} heldout {held:.4f}")
    sync()
    return TrainResult(
        total_steps, total_steps * B * T, time.time() - t_start, curve, float(ema), compiled, step_seconds
    )


# ---------------------------------------------------------------------------------------------- export


def export_model(model: Any, out: str) -> tuple[str, str]:
    """Save float16 weights (HF key names) and a standard GPT-2 config.json into `out`."""
    import torch
    from transformers import GPT2LMHeadModel

    half = GPT2LMHeadModel(model.config)
    half.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    half = half.to(torch.float16).eval()
    with tempfile.TemporaryDirectory() as tmp:
        half.save_pretrained(tmp)
        st = os.path.join(tmp, "model.safetensors")
        if not os.path.exists(st):
            raise RuntimeError(f"save_pretrained wrote no model.safetensors: {os.listdir(tmp)}")
        shutil.copyfile(st, os.path.join(out, "model.safetensors"))
        with open(os.path.join(tmp, "config.json"), encoding="utf-8") as fh:
            cfg = json.load(fh)
    cfg.update(
        model_type="gpt2",
        vocab_size=model.config.vocab_size,
        n_positions=model.config.n_positions,
        n_embd=model.config.n_embd,
        n_layer=model.config.n_layer,
        n_head=model.config.n_head,
        layer_norm_epsilon=model.config.layer_norm_epsilon,
        activation_function=model.config.activation_function,
        tie_word_embeddings=True,
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
    )
    cfg_path = os.path.join(out, "config.json")
    with open(cfg_path, "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return cfg_path, os.path.join(out, "model.safetensors")


def load_shipped_float64(out: str, device: str) -> Any:
    """Load the shipped float16 weights into a float64 GPT-2 (eager attention, eval mode)."""
    import torch
    from safetensors.torch import load_file
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config.from_pretrained(out)
    model = GPT2LMHeadModel(config)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"
    state = load_file(os.path.join(out, "model.safetensors"))
    if any(v.dtype != torch.float16 for v in state.values()):
        raise RuntimeError("shipped weights are not all float16")
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    if model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr():
        raise RuntimeError("lm_head is not tied to wte")
    return model.to(device=device, dtype=torch.float64).eval()


def float64_heldout(model64: Any, tokens: np.ndarray, device: str, batch: int = 8) -> dict[str, Any]:
    """The loss of PROTOCOL, plus per-row losses and a few reference logits."""
    import torch
    import torch.nn.functional as F

    per_row: list[float] = []
    ref: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(0, len(tokens), batch):
            x = torch.from_numpy(tokens[i : i + batch].astype(np.int64)).to(device)
            logits = model64(input_ids=x, use_cache=False).logits
            assert logits.dtype == torch.float64
            lp = F.log_softmax(logits[:, :-1], dim=-1)
            nll = -lp.gather(-1, x[:, 1:, None]).squeeze(-1)
            per_row.extend(nll.mean(dim=1).cpu().tolist())
            if i == 0:
                ref = {
                    "row0_pos0_logits_first8": logits[0, 0, :8].cpu().tolist(),
                    "row0_poslast_logits_first8": logits[0, -1, :8].cpu().tolist(),
                }
    # all rows have the same length, so the mean of row means is the mean over all positions
    return {"loss": float(np.mean(np.array(per_row, dtype=np.float64))), "per_row": per_row, **ref}


def greedy_samples(
    model64: Any, tokenizer: Any, device: str, n_new: int, eot_id: int
) -> list[tuple[str, str]]:
    import torch

    out = []
    with torch.no_grad():
        for prompt in SAMPLE_PROMPTS:
            ids = tokenizer.encode(prompt).ids
            for _ in range(n_new):
                x = torch.tensor([ids[-model64.config.n_positions :]], device=device)
                nxt = int(model64(input_ids=x, use_cache=False).logits[0, -1].argmax())
                ids.append(nxt)
                if nxt == eot_id:
                    break
            out.append((prompt, tokenizer.decode(ids, skip_special_tokens=False)))
    return out


# ------------------------------------------------------------------------------------------ model card


def fmt_bytes(n: int) -> str:
    return f"{n:,} bytes ({n / 2**20:.1f} MiB)"


def write_model_card(out: str, info: dict[str, Any]) -> None:
    c = info
    lines = [
        "# lampnum default model: a small GPT-2 trained on permissively licensed Python source code",
        "",
        "A GPT-2 (Hugging Face `GPT2LMHeadModel` architecture) of "
        f"{c['n_params']:,} parameters, trained from scratch by `examples/train_small_gpt2.py` "
        "so that lampnum has a real trained transformer to study offline (trained attention is peaked; "
        "random weights are not).",
        "",
        "## Files",
        "",
        "| file | contents |",
        "| --- | --- |",
        "| `config.json` | standard Hugging Face GPT-2 config (`model_type: gpt2`) |",
        "| `model.safetensors` | weights in float16, HF key names; `lm_head.weight` is not stored "
        "(tied to `transformer.wte.weight`) |",
        f"| `tokenizer.json` | byte-level BPE, vocabulary {c['vocab_size']}, `{EOT}` = id {c['eot_id']} |",
        f"| `eval_tokens.npy` | held-out tokens, uint16, shape {list(c['eval_shape'])} |",
        "| `metrics.json` | the numbers below, machine-readable |",
        "",
        "## Architecture",
        "",
        f"- vocab_size {c['vocab_size']}, n_positions {c['context']}, n_embd {c['n_embd']}, "
        f"n_layer {c['n_layer']}, n_head {c['n_head']} (head dim {c['n_embd'] // c['n_head']}), "
        f"MLP inner 4*n_embd = {4 * c['n_embd']}",
        "- activation `gelu_new` (tanh approximation), pre-LayerNorm blocks with a final LayerNorm "
        "(eps 1e-5), learned absolute position embeddings, attention scaled by 1/sqrt(head_dim), output head "
        "tied to the token embedding, no bias in the head",
        f"- parameters: {c['n_params']:,} (token embedding {c['vocab_size'] * c['n_embd']:,}, "
        f"positions {c['context'] * c['n_embd']:,})",
        "",
        "## Corpus",
        "",
        f"- machine: {c['machine']}; Python {c['python_version']} (`{c['python_executable']}`)",
        "- roots (in this order): " + ", ".join(f"`{r}`" for r in c["roots"]),
        f"- licence rule: {LICENCE_RULE}",
        "- files: every `*.py` below a root that the licence rule admits, walked in sorted order, skipping "
        "folders named "
        + ", ".join(f"`{d}`" for d in sorted(SKIPPED_DIRS | VENDORED_DIRS))
        + f"; skipped: not UTF-8, empty, larger than {c['max_file_kib']} KiB, any line longer "
        f"than {c['max_line_chars']} characters, or content identical to an earlier file. "
        "CRLF is normalised to LF.",
        f"- eligible files: {c['n_eligible']:,}, {fmt_bytes(c['eligible_bytes'])}; "
        f"cap {c['max_corpus_mib']} MiB "
        '(files taken in order of SHA-256("order:"+key))',
        "- rejected: " + ", ".join(f"{k} {v:,}" for k, v in sorted(c["rejected"].items())),
        '- split by file: held out when SHA-256("split:"+key)[:8] (big-endian) mod 1000 < '
        f"{c['heldout_permille']}; key = `<root basename>/<path relative to root>`",
        f"- corpus digest (SHA-256 over key + NUL + SHA-256(content), key order): `{c['corpus_digest']}`",
        "",
        "| split | files | bytes | tokens |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['split']} | {r['files']:,} | {r['bytes']:,} ({r['bytes'] / 2**20:.1f} MiB) | {r['tokens']:,} |"
        for r in c["split_rows"]
    ]
    report = c["licence_report"]
    lines += [
        "",
        f"Sources admitted ({len(report['accepted']) - 1} distributions plus the standard library; files and "
        "bytes after all filters, both splits):",
        "",
        *licence_table_lines(report),
        "",
        "- largest contributors (root/top-level package: files, bytes): "
        + "; ".join(f"{k}: {n:,}, {b:,}" for k, n, b in c["top_level"][:25]),
        "- caveats: the licence decision is read from package metadata as installed, not from a legal "
        "review of each file; individual files inside an accepted distribution can carry other notices. "
        "Exact duplicates are removed and the split is by file, but near-duplicates can remain across "
        "packages, so the held-out loss somewhat flatters generalisation.",
    ]
    lines += [
        "",
        "## Tokenizer",
        "",
        f"`tokenizers` {c['tokenizers_version']} `ByteLevelBPETokenizer` (GPT-2 byte-level pre-tokenizer, "
        f"no prefix space), vocab_size {c['vocab_size']}, min_frequency 2, special token `{EOT}` "
        f"(id {c['eot_id']}), trained on the first {c['tokenizer_train_mib']} MiB of the training split "
        "in key "
        f"order. Documents are joined as `tokens(file) + [{EOT}]`. Bytes per token on the held-out split: "
        f"{c['heldout_bytes'] / c['heldout_tokens']:.3f}.",
        "",
        "## Training",
        "",
        f"- torch {c['torch_version']}, transformers {c['transformers_version']}, device: {c['device_name']}",
        f"- seed {c['seed']}; {c['steps']:,} steps of {c['batch_size']} x {c['context']} tokens = "
        f"{c['tokens_seen']:,} tokens seen ({c['tokens_seen'] / max(1, c['train_tokens']):.2f} epochs of "
        "the training split); windows drawn uniformly at random from the training stream",
        f"- AdamW (betas 0.9, 0.95, eps 1e-8, weight decay {c['weight_decay']} on matrices and "
        f"embeddings, none on biases/LayerNorm), peak lr {c['lr']}, linear warm-up {c['warmup_steps']} "
        "steps, cosine decay to "
        f"{c['min_lr_frac']} x peak, gradient clip {c['grad_clip']}, dropout {c['dropout']}, bf16 autocast, "
        f"torch.compile {c['compiled']}",
        f"- training wall time {c['train_seconds']:.1f} s "
        f"({c['tokens_seen'] / c['train_seconds'] / 1e6:.2f} M tokens/s); "
        f"whole script {c['total_seconds']:.1f} s",
        "",
        "## Losses (nats per token)",
        "",
        f"- ln(vocab_size) = {math.log(c['vocab_size']):.4f} (uniform prediction)",
        f"- final training loss (EMA of minibatch losses): {c['final_train_loss_ema']:.4f}",
        f"- training loss on {c['train_eval_windows']} random training windows, fp32 weights, bf16 autocast: "
        f"{c['train_loss_final']:.4f}",
        f"- held-out loss on {c['heldout_eval_windows']} held-out windows, fp32 weights, bf16 autocast: "
        f"{c['heldout_loss_final']:.4f}",
        "- held-out loss on `eval_tokens.npy`, shipped float16 weights evaluated in float64 "
        "(the reference number):",
        "",
        f"heldout_loss_float64: {c['heldout_loss_float64']:.15f}",
        "",
        f"Protocol: {PROTOCOL}",
        "",
        "Held-out loss during training (bf16 autocast, on "
        f"{c['curve_windows']} held-out windows of {c['context']} tokens):",
        "",
        "| step | tokens | train loss (EMA) | held-out loss |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {p['step']} | {p['tokens']:,} | {p['train_loss_ema']:.4f} | {p['heldout_loss']:.4f} |"
        for p in c["curve"]
    ]
    lines += ["", "## Greedy samples (shipped weights in float64, 60 new tokens)", ""]
    for prompt, text in c["samples"]:
        lines += [f"Prompt `{prompt!r}`:", "", "```python", text, "```", ""]
    lines += [
        "## How to retrain",
        "",
        "On a machine with an NVIDIA GPU, torch, transformers, tokenizers, safetensors and numpy:",
        "",
        "```",
        c["retrain_command"],
        "```",
        "",
        f"This run was started as `{c['run_command']}`."
        + (
            f" `--minutes` calibrated the number of steps to {c['steps']:,}, which the command above fixes "
            "(both do the same warm-up and calibration steps and then reset the model, optimizer and random "
            "generators to the seed)."
            if c["calibrated"]
            else ""
        ),
        "",
        "The corpus is read from the given roots, so an identical corpus needs the same Python and "
        "site-packages (compare the corpus digest above, which the script logs). GPU kernels are not bitwise "
        "deterministic, so a rerun reproduces the losses closely but not the weights bit for bit. "
        "Copy the output folder's "
        "`config.json`, `model.safetensors`, `tokenizer.json`, `eval_tokens.npy`, `metrics.json` and "
        "`MODEL_CARD.md` into `lampnum/gpt2/data/`. The output folder's `corpus.json` (not shipped) holds "
        "the licence decision for every installed distribution, with the raw licence strings; "
        "`--dry-run` writes it without training, to check the corpus first.",
        "",
    ]
    with open(os.path.join(out, "MODEL_CARD.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--corpus-root",
        action="append",
        default=None,
        help="folder to read *.py files from (repeatable); default: stdlib and site-packages of this Python",
    )
    p.add_argument("--max-corpus-mib", type=float, default=400.0)
    p.add_argument("--max-file-kib", type=int, default=512)
    p.add_argument("--max-line-chars", type=int, default=1000)
    p.add_argument("--heldout-permille", type=int, default=50, help="per mille of files held out")
    p.add_argument("--tokenizer-train-mib", type=float, default=64.0)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-head", type=int, default=8)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.05)
    p.add_argument("--warmup-frac", type=float, default=0.02)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="number of optimizer steps")
    g.add_argument("--minutes", type=float, help="training time; the step count is calibrated, then fixed")
    p.add_argument(
        "--max-wall-minutes",
        type=float,
        default=None,
        help="with --minutes: shorten training so the whole script ends within this time",
    )
    p.add_argument("--reserve-seconds", type=float, default=60.0, help="time kept for evaluation and export")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--no-compile", dest="compile", action="store_false", help="do not use torch.compile")
    p.add_argument("--log-every", type=int, default=200)
    p.add_argument("--n-evals", type=int, default=10)
    p.add_argument("--eval-windows", type=int, default=256, help="held-out windows evaluated during training")
    p.add_argument("--final-eval-windows", type=int, default=2048)
    p.add_argument("--eval-seqs", type=int, default=64, help="rows of eval_tokens.npy")
    p.add_argument("--eval-batch", type=int, default=64)
    p.add_argument("--sample-tokens", type=int, default=60)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only build the corpus, log the licence table and write corpus.json (no torch needed)",
    )
    args = p.parse_args(argv)
    if not args.dry_run and args.steps is None and args.minutes is None:
        p.error("one of --steps or --minutes is required (unless --dry-run)")
    return args


def retrain_command(args: argparse.Namespace, steps: int, default_roots: bool) -> str:
    parts = [
        "python examples/train_small_gpt2.py --out OUT_DIR",
        f"--steps {steps}",
        f"--seed {args.seed}",
        f"--vocab-size {args.vocab_size} --tokenizer-train-mib {args.tokenizer_train_mib:g}",
        f"--max-corpus-mib {args.max_corpus_mib:g} --max-file-kib {args.max_file_kib}",
        f"--max-line-chars {args.max_line_chars} --heldout-permille {args.heldout_permille}",
        f"--context {args.context} --n-embd {args.n_embd} --n-layer {args.n_layer} --n-head {args.n_head}",
        f"--batch-size {args.batch_size} --lr {args.lr:g} --min-lr-frac {args.min_lr_frac:g}",
        f"--warmup-frac {args.warmup_frac:g} --weight-decay {args.weight_decay:g}",
        f"--grad-clip {args.grad_clip:g} --dropout {args.dropout:g} --eval-seqs {args.eval_seqs}",
    ]
    if not default_roots:
        parts += [f"--corpus-root {r}" for r in args.corpus_root]
    if not args.compile:
        parts.append("--no-compile")
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = Log(os.path.join(args.out, "train.log"))
    log(f"argv: {sys.argv}")
    log(f"args: {vars(args)}")

    default_roots = args.corpus_root is None
    roots = default_corpus_roots() if default_roots else [os.path.realpath(r) for r in args.corpus_root]
    log(f"python {platform.python_version()} ({sys.executable}); corpus roots: {roots}")
    corpus = build_corpus(
        roots,
        args.max_file_kib * 1024,
        args.max_line_chars,
        int(args.max_corpus_mib * 2**20),
        args.heldout_permille,
    )
    log(
        f"eligible {corpus.n_eligible} files ({corpus.eligible_bytes} bytes); "
        f"rejected {dict(sorted(corpus.rejected.items()))}"
    )
    train_bytes = sum(f.nbytes for f in corpus.train)
    heldout_bytes = sum(f.nbytes for f in corpus.heldout)
    log(
        f"train {len(corpus.train)} files {train_bytes} bytes; heldout {len(corpus.heldout)} files "
        f"{heldout_bytes} bytes; digest {corpus.digest}"
    )
    top = top_level_counts(corpus.train + corpus.heldout)
    for k, n, b in top[:40]:
        log(f"  {k}: {n} files {b} bytes")
    report = licence_report(corpus)
    n_dists = len(corpus.distributions)
    log(
        f"licences: {len(report['accepted']) - 1} of {n_dists} distributions accepted "
        "(plus the standard library), table:\n" + "\n".join(licence_table_lines(report))
    )
    split_rows = [
        {"split": "train", "files": len(corpus.train), "bytes": train_bytes, "tokens": None},
        {"split": "heldout", "files": len(corpus.heldout), "bytes": heldout_bytes, "tokens": None},
    ]
    corpus_json = {
        "rule": LICENCE_RULE,
        "roots": roots,
        "python_version": platform.python_version(),
        "corpus_digest": corpus.digest,
        "rejected": dict(sorted(corpus.rejected.items())),
        "splits": split_rows,
        **report,
    }

    def write_corpus_json() -> None:
        with open(os.path.join(args.out, "corpus.json"), "w", encoding="utf-8") as fh:
            json.dump(corpus_json, fh, indent=2)
            fh.write("\n")

    if args.dry_run:
        write_corpus_json()
        log(f"dry run: wrote corpus.json; done in {log.elapsed():.1f}s")
        return

    import safetensors
    import tokenizers
    import torch
    import transformers
    from transformers import GPT2LMHeadModel

    transformers.utils.logging.disable_progress_bar()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu"
    log(
        f"torch {torch.__version__}; transformers "
        f"{transformers.__version__}; tokenizers {tokenizers.__version__}; "
        f"safetensors {safetensors.__version__}; numpy {np.__version__}; device {device} ({device_name})"
    )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    tok = train_tokenizer(corpus.train, args.vocab_size, int(args.tokenizer_train_mib * 2**20))
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    tokenizer = tokenizers.Tokenizer.from_file(tok_path)
    eot_id = tokenizer.token_to_id(EOT)
    vocab_size = tokenizer.get_vocab_size()
    log(f"tokenizer trained: vocab {vocab_size}, eot id {eot_id}")
    if vocab_size > 65535:
        raise ValueError("uint16 token storage needs vocab_size <= 65535")

    train_tokens = encode_files(tokenizer, corpus.train, eot_id)
    heldout_tokens = encode_files(tokenizer, corpus.heldout, eot_id)
    log(
        f"tokens: train {len(train_tokens)}, heldout {len(heldout_tokens)}; "
        f"bytes/token train {train_bytes / len(train_tokens):.3f}"
    )
    split_rows[0]["tokens"] = int(len(train_tokens))
    split_rows[1]["tokens"] = int(len(heldout_tokens))
    write_corpus_json()
    T = args.context
    eval_tokens = windows(heldout_tokens, T, args.eval_seqs)
    np.save(os.path.join(args.out, "eval_tokens.npy"), eval_tokens, allow_pickle=False)
    heldout_curve = windows(heldout_tokens, T, args.eval_windows)
    heldout_final = windows(heldout_tokens, T, args.final_eval_windows)
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(0, len(train_tokens) - T, size=len(heldout_final))
    train_final = np.stack([train_tokens[s : s + T] for s in starts])
    log(
        f"eval_tokens {eval_tokens.shape}; curve windows {len(heldout_curve)}; "
        f"final windows {len(heldout_final)}"
    )

    torch.manual_seed(args.seed)
    config = make_config(args, vocab_size, eot_id)
    model = GPT2LMHeadModel(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters; attention implementation {model.config._attn_implementation}")

    result = train(model, train_tokens, heldout_curve, args, device, log)
    log(f"trained {result.steps} steps, {result.tokens_seen} tokens, {result.train_seconds:.1f}s")

    export_model(model, args.out)
    log(f"exported model.safetensors ({os.path.getsize(os.path.join(args.out, 'model.safetensors'))} bytes)")
    train_loss_final = mean_loss(model, train_final, device, args.eval_batch, autocast=device == "cuda")
    heldout_loss_final = mean_loss(model, heldout_final, device, args.eval_batch, autocast=device == "cuda")
    log(
        f"final (fp32 weights, bf16 autocast): train {train_loss_final:.4f}, heldout {heldout_loss_final:.4f}"
    )
    del model

    model64 = load_shipped_float64(args.out, device)
    f64 = float64_heldout(model64, eval_tokens, device)
    log(f"heldout_loss_float64 (shipped fp16 weights, float64, eval_tokens.npy): {f64['loss']:.15f}")
    samples = greedy_samples(model64, tokenizer, device, args.sample_tokens, eot_id)
    for prompt, text in samples:
        log(f"sample {prompt!r}:\n{text}\n---")

    info: dict[str, Any] = {
        "machine": f"{platform.system()} {platform.machine()}, {device_name}",
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "roots": roots,
        "max_file_kib": args.max_file_kib,
        "max_line_chars": args.max_line_chars,
        "n_eligible": corpus.n_eligible,
        "eligible_bytes": corpus.eligible_bytes,
        "max_corpus_mib": args.max_corpus_mib,
        "rejected": dict(corpus.rejected),
        "heldout_permille": args.heldout_permille,
        "train_files": len(corpus.train),
        "train_bytes": train_bytes,
        "train_tokens": int(len(train_tokens)),
        "heldout_files": len(corpus.heldout),
        "heldout_bytes": heldout_bytes,
        "heldout_tokens": int(len(heldout_tokens)),
        "corpus_digest": corpus.digest,
        "top_level": top,
        "licence_report": report,
        "split_rows": split_rows,
        "tokenizers_version": tokenizers.__version__,
        "vocab_size": vocab_size,
        "eot_id": eot_id,
        "tokenizer_train_mib": args.tokenizer_train_mib,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "device_name": device_name,
        "seed": args.seed,
        "n_params": n_params,
        "context": T,
        "n_embd": args.n_embd,
        "n_layer": args.n_layer,
        "n_head": args.n_head,
        "steps": result.steps,
        "batch_size": args.batch_size,
        "tokens_seen": result.tokens_seen,
        "weight_decay": args.weight_decay,
        "lr": args.lr,
        "warmup_steps": max(1, int(args.warmup_frac * result.steps)),
        "min_lr_frac": args.min_lr_frac,
        "grad_clip": args.grad_clip,
        "dropout": args.dropout,
        "compiled": result.compiled,
        "train_seconds": result.train_seconds,
        "step_seconds": result.step_seconds,
        "final_train_loss_ema": result.final_train_loss_ema,
        "train_eval_windows": len(train_final),
        "train_loss_final": train_loss_final,
        "heldout_eval_windows": len(heldout_final),
        "heldout_loss_final": heldout_loss_final,
        "heldout_loss_float64": f64["loss"],
        "curve": result.curve,
        "curve_windows": len(heldout_curve),
        "eval_shape": list(eval_tokens.shape),
        "samples": samples,
        "run_command": "python3 " + " ".join(shlex.quote(a) for a in sys.argv),
        "calibrated": not args.steps,
        "retrain_command": retrain_command(args, result.steps, default_roots),
    }
    info["total_seconds"] = log.elapsed()
    write_model_card(args.out, info)
    metrics = {
        "heldout_loss_float64": f64["loss"],
        "protocol": PROTOCOL,
        "eval_tokens_file": "eval_tokens.npy",
        "eval_tokens_shape": list(eval_tokens.shape),
        "heldout_loss_float64_per_row": f64["per_row"],
        "reference_logits_float64": {
            k: f64[k] for k in ("row0_pos0_logits_first8", "row0_poslast_logits_first8")
        },
        "ln_vocab_size": math.log(vocab_size),
        "corpus_licence_rule": LICENCE_RULE,
        "corpus_splits": split_rows,
        "corpus_distributions_accepted": report["accepted"],
        "corpus_distributions_excluded": [
            {"name": e["name"], "reason": e["reason"]} for e in report["excluded"]
        ],
        "corpus_rejected": dict(sorted(corpus.rejected.items())),
        **{
            k: info[k]
            for k in (
                "vocab_size",
                "eot_id",
                "n_params",
                "context",
                "n_embd",
                "n_layer",
                "n_head",
                "steps",
                "batch_size",
                "tokens_seen",
                "train_seconds",
                "final_train_loss_ema",
                "train_loss_final",
                "heldout_loss_final",
                "train_files",
                "train_bytes",
                "train_tokens",
                "heldout_files",
                "heldout_bytes",
                "heldout_tokens",
                "corpus_digest",
                "roots",
                "python_version",
                "torch_version",
                "transformers_version",
                "tokenizers_version",
                "device_name",
                "seed",
                "retrain_command",
                "curve",
            )
        },
    }
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    log(f"done in {log.elapsed():.1f}s; wrote {sorted(os.listdir(args.out))}")


if __name__ == "__main__":
    main()
