"""The sentence encoder as an ONNX graph, run by onnxruntime: the same weights, half the latency.

On these 2-core machines a one-query forward pass of all-MiniLM-L6-v2 takes ~9 ms in torch
and ~4 ms in onnxruntime, which is most of asset search's latency budget. The graph is
exported from the packaged model on first use (offline, about a second) with mean pooling
and normalisation inside it, so its output is exactly sentence-transformers' embedding; it is
cached under the user's cache folder, keyed by the model files, and written atomically so
processes starting together do not race.

The serving process never imports torch or sentence-transformers (about 400 MiB resident):
the export runs in a child process (``python -m state.onnx_encoder MODEL_DIR GRAPH``), and
texts are tokenised by the ``tokenizers`` package from the model's own tokenizer.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np

from mca.errors import ConfigError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
EXPORT_FORMAT = "mean-pool-normalize-v1"
EXPORT_TIMEOUT_S = 300
# sentence-transformers' default when the model folder does not say (it says 256 here).
DEFAULT_MAX_SEQ_LENGTH = 256


class ExportFailed(ConfigError):
    """The graph could not be exported; the caller may fall back to torch."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mca" / "onnx"


def model_fingerprint(model_path: Path) -> str:
    """Names the export: the model's files (name, size, mtime) and the export format."""
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    for file in sorted(p for p in model_path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(model_path)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def graph_path(model_path: Path) -> Path:
    return cache_dir() / f"minilm-{model_fingerprint(model_path)}.onnx"


def max_seq_length(model_path: Path) -> int:
    """What sentence-transformers truncates to: sentence_bert_config.json's max_seq_length."""
    config = model_path / "sentence_bert_config.json"
    if not config.exists():
        return DEFAULT_MAX_SEQ_LENGTH
    return int(json.loads(config.read_text()).get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)


def load_tokenizer(model_path: Path) -> Any:
    """The model's fast tokenizer, padding to the longest text and truncating as sentence-transformers does.

    tokenizer.json carries its own fixed padding and truncation (128); the model is used
    with dynamic padding and max_seq_length, so both are set here.
    """
    from tokenizers import Tokenizer

    source = model_path / "tokenizer.json"
    if not source.exists():
        raise ExportFailed(f"no tokenizer.json in {model_path}")
    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.enable_truncation(max_length=max_seq_length(model_path))
    pad_token = "[PAD]"
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise ExportFailed(f"the tokenizer in {model_path} has no {pad_token} token")
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def export_in_child(model_path: Path, graph: Path) -> None:
    """Export in a separate process, so torch's memory goes away with it."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "state.onnx_encoder", str(model_path), str(graph)],
            env=env,
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ExportFailed(f"exporting the ONNX encoder took over {EXPORT_TIMEOUT_S} s") from None
    if done.returncode != 0 or not graph.exists():
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportFailed(f"cannot export the ONNX encoder to {graph}: {reason}")


class OnnxEncoder:
    """Encodes texts with the model's tokenizer and an onnxruntime session on one intra-op thread."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime as ort

        self._tokenizer = load_tokenizer(model_path)
        graph = graph_path(model_path)
        if not graph.exists():
            export_in_child(model_path, graph)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # a corrupt cache file: say where it is so it can be removed
            raise ConfigError(f"cannot load the ONNX encoder {graph}: {err}") from None

    def encode(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (vectors,) = self._session.run(None, feeds)
        return np.asarray(vectors, dtype=np.float32)


def export(model_path: Path, target: Path) -> None:
    """Trace the packaged model with pooling and normalisation into an ONNX graph at `target`."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)

    transformer = cast("torch.nn.Module", model[0].auto_model)
    transformer.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        # The tracer warns about shape checks it freezes; for this encoder they are constant
        # (no KV cache, never causal), and the equality test against torch covers padding.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(),
                tuple(sample[name] for name in INPUTS),
                tmp_name,
                input_names=list(INPUTS),
                output_names=["embedding"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUTS},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m state.onnx_encoder MODEL_DIR GRAPH")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    export(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
