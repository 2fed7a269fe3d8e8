"""One feature extractor for reference and live data.

Every source becomes the same `Features`: a table of scalar features (one row per request or prompt),
the prompt sketch vectors, and timestamps where the source has them. Text is always profiled by
`tollgate.contracts.sketch.prompt_profile` / `text_of_messages`, the functions the capture log itself uses,
so a training prompt, a gateway's request body and a captured request give comparable features.

Sources: the capture log (JSONL, docs/reference/files.md, tollgate.contracts.capture), JSONL of OpenAI request bodies (chat or
completions), training prompt datasets (JSONL with `messages`, `prompt` or `text`, or bare JSON strings),
feature tables (CSV / parquet) and pandas DataFrames. Tables may hold any columns: numeric dtypes are numeric
features, others categorical, `sketch_0..sketch_N` the sketch vector.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tollgate.contracts.capture import validate_capture_record
from tollgate.contracts.sketch import SCRIPTS, prompt_profile, text_of_messages

NUMERIC = (
    "prompt_tokens",
    "prompt_chars",
    "prompt_words",
    "max_tokens",
    "completion_tokens",
    "temperature",
    "top_p",
    "n_messages",
    "non_text_share",
)
CATEGORICAL = ("system_fingerprint", "dominant_script")
SKETCH_PREFIX = "sketch_"
SKETCH_FEATURE = "prompt_sketch"  # the multivariate feature: hashed prompt sketch ...
EMBEDDING_FEATURE = "prompt_embedding"  # ... or, with --embeddings, sentence embeddings (drift.embeddings)
NO_SYSTEM = "<none>"
MAX_WARNINGS = 20


class FeatureError(ValueError):
    """Input that cannot be turned into features at all (unreadable file, unknown format)."""


@dataclass
class Features:
    table: pd.DataFrame
    vectors: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    n_skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    vector_name: str = SKETCH_FEATURE

    def __len__(self) -> int:
        return len(self.table)

    def kinds(self) -> dict[str, str]:
        """Feature name -> "numeric" | "categorical" (| "sketch" when vectors exist)."""
        out = {name: kind_of(name, self.table[name]) for name in self.table.columns}
        if self.vectors is not None:
            out[self.vector_name] = "sketch"
        return out

    def select(self, mask: np.ndarray) -> Features:
        return Features(
            self.table[mask].reset_index(drop=True),
            None if self.vectors is None else self.vectors[mask],
            None if self.timestamps is None else self.timestamps[mask],
            self.n_skipped,
            list(self.warnings),
            self.vector_name,
        )


def kind_of(name: str, column: pd.Series) -> str:
    if name in CATEGORICAL:
        return "categorical"
    if name in NUMERIC:
        return "numeric"
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return "categorical"
    return "numeric"


def _dominant_script(mix: Mapping[str, float]) -> str:
    best = max(SCRIPTS, key=lambda s: mix.get(s, 0.0))
    return best if mix.get(best, 0.0) > 0 else "none"


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return np.nan
    return float(value)


def _from_profile(profile: Mapping[str, Any], row: dict[str, Any]) -> list[float]:
    row["prompt_chars"] = _num(profile.get("chars"))
    row["prompt_words"] = _num(profile.get("words"))
    row["non_text_share"] = _num(profile.get("non_text_share"))
    row["dominant_script"] = _dominant_script(profile.get("script_mix") or {})
    row["system_fingerprint"] = profile.get("system_fingerprint") or NO_SYSTEM
    return list(profile.get("sketch") or [])


def _prompt_text(record: Mapping[str, Any]) -> tuple[str | None, str | None, float]:
    """(text, system prompt, n_messages) of a request body or dataset line; text None when unusable."""
    if isinstance(record.get("messages"), list):
        msgs = [m for m in record["messages"] if isinstance(m, Mapping)]
        text, system = text_of_messages(msgs)
        return text, system, float(len(msgs))
    for key in ("prompt", "text", "input"):
        value = record.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = "\n".join(value)
        if isinstance(value, str):
            return value, None, np.nan
    return None, None, np.nan


def record_features(record: Any) -> tuple[dict[str, Any], list[float], float | None]:
    """(scalar features, sketch vector, timestamp) of one JSONL line; raises ValueError with the reason."""
    if isinstance(record, str):
        record = {"text": record}
    if not isinstance(record, Mapping):
        raise ValueError(f"expected a JSON object or string, got {type(record).__name__}")
    row: dict[str, Any] = {name: np.nan for name in NUMERIC}
    ts = _num(record.get("timestamp", record.get("created")))
    timestamp = None if np.isnan(ts) else ts
    if "prompt_profile" in record:
        problems = validate_capture_record(record)
        if problems:
            raise ValueError("capture record: " + "; ".join(problems[:3]))
        vector = _from_profile(record["prompt_profile"], row)
        for name in (
            "prompt_tokens",
            "completion_tokens",
            "max_tokens",
            "temperature",
            "top_p",
            "n_messages",
        ):
            row[name] = _num(record.get(name))
        return row, vector, timestamp
    text, system, n_messages = _prompt_text(record)
    if text is None:
        raise ValueError("no 'prompt_profile', 'messages', 'prompt' or 'text' field with text")
    vector = _from_profile(prompt_profile(text, system), row)
    row["n_messages"] = n_messages
    max_tokens = record.get("max_completion_tokens", record.get("max_tokens"))
    row["max_tokens"] = _num(max_tokens)
    row["temperature"] = _num(record.get("temperature"))
    row["top_p"] = _num(record.get("top_p"))
    usage = record.get("usage")
    if isinstance(usage, Mapping):
        row["prompt_tokens"] = _num(usage.get("prompt_tokens"))
        row["completion_tokens"] = _num(usage.get("completion_tokens"))
    return row, vector, timestamp


def record_text(record: Any) -> str | None:
    """The prompt text of a line, None when it carries none (a capture line without --capture-text)."""
    if isinstance(record, str):
        return record
    if not isinstance(record, Mapping):
        return None
    if "prompt_profile" in record:
        text = record.get("prompt_text")
        return text if isinstance(text, str) else None
    return _prompt_text(record)[0]


def iter_jsonl(path: Path, warnings: list[str]) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each good line; bad lines are reported in `warnings` and skipped.

    A last line without a newline that does not parse is a write in progress (the server is appending):
    it is skipped quietly, not reported as corrupt.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith("\n"):
                    continue
                warnings.append(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); line skipped"
                )


def records_to_features(
    lines: Iterator[tuple[int, Any]], source: str, warnings: list[str], embed: bool = False
) -> Features:
    """Features of decoded lines; `embed` replaces the prompt sketch by sentence embeddings of the text."""
    rows: list[dict[str, Any]] = []
    texts: list[str] = []
    vectors: list[list[float]] = []
    stamps: list[float] = []
    dims: int | None = None
    for lineno, record in lines:
        try:
            row, vector, ts = record_features(record)
        except ValueError as exc:
            warnings.append(f"{source}:{lineno}: {exc}; line skipped")
            continue
        text = record_text(record) if embed else ""
        if text is None:
            warnings.append(
                f"{source}:{lineno}: no prompt text to embed (capture with --capture-text); line skipped"
            )
            continue
        if dims is None:
            dims = len(vector)
        if len(vector) != dims:
            warnings.append(f"{source}:{lineno}: prompt sketch has {len(vector)} values, expected {dims}")
            continue
        rows.append(row)
        texts.append(text)
        vectors.append(vector)
        stamps.append(np.nan if ts is None else ts)
    skipped = len(warnings)  # every problem reported here is one skipped line
    table = pd.DataFrame(rows, columns=[*NUMERIC, *CATEGORICAL])
    for name in NUMERIC:
        table[name] = table[name].astype(float)
    ts_arr = np.asarray(stamps, dtype=float)
    feats = Features(
        table,
        np.asarray(vectors, dtype=float).reshape(len(rows), dims or 0) if dims else None,
        None if ts_arr.size == 0 or np.isnan(ts_arr).all() else ts_arr,
        skipped,
        _cap(warnings),
    )
    if embed:
        from drift.embeddings import embed as embed_texts

        feats.vectors = embed_texts(texts).astype(float) if texts else None
        feats.vector_name = EMBEDDING_FEATURE
    return feats


def _cap(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS:
        return list(warnings)
    return [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more problems like these"]


def features_from_frame(df: pd.DataFrame, embed: bool = False) -> Features:
    """Features from a table: feature columns as they are, `sketch_*` columns as the vector, `timestamp`."""
    sketch_cols = sorted(
        (c for c in df.columns if isinstance(c, str) and c.startswith(SKETCH_PREFIX)),
        key=lambda c: int(c[len(SKETCH_PREFIX) :]) if c[len(SKETCH_PREFIX) :].isdigit() else 1 << 30,
    )
    text_col = next((c for c in ("prompt_text", "text", "prompt") if c in df.columns), None)
    if text_col is not None and not sketch_cols:
        derived = records_to_features(
            ((i + 1, {"text": t} if isinstance(t, str) else None) for i, t in enumerate(df[text_col])),
            f"column {text_col}",
            [],
            embed,
        )
        rest = df.drop(columns=[text_col]).reset_index(drop=True)
        table = pd.concat(
            [derived.table.drop(columns=[c for c in rest.columns if c in derived.table]), rest], axis=1
        )
        return Features(
            table, derived.vectors, _timestamps(df), derived.n_skipped, derived.warnings, derived.vector_name
        )
    table = df.drop(columns=[*sketch_cols, *(["timestamp"] if "timestamp" in df.columns else [])])
    table = table.reset_index(drop=True)
    for name in table.columns:
        if name in CATEGORICAL:
            table[name] = table[name].astype(object)
        elif name in NUMERIC:
            table[name] = pd.to_numeric(table[name], errors="coerce").astype(float)
    vectors = df[sketch_cols].to_numpy(dtype=float) if sketch_cols else None
    return Features(table, vectors, _timestamps(df))


def _timestamps(df: pd.DataFrame) -> np.ndarray | None:
    if "timestamp" not in df.columns:
        return None
    return pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=float)


SEPARATORS = {".csv": ",", ".tsv": "\t"}  # delimited tables by file suffix
TABLE_SUFFIXES = (*SEPARATORS, ".parquet")  # read as tables; any other file as JSONL


def _existing_suffix(path: Path) -> str:
    """The lower-case suffix that picks the reader, once the file is known to exist."""
    if not path.exists():
        raise FeatureError(f"{path}: no such file")
    return path.suffix.lower()


def iter_feature_chunks(
    path: str | Path, chunk_rows: int = 100_000, embed: bool = False
) -> Iterator[Features]:
    """Features of a file in chunks of at most `chunk_rows` rows, so profiling a large training set needs
    memory for one chunk, not for the file."""
    path = Path(path)
    suffix = _existing_suffix(path)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield features_from_frame(batch.to_pandas(), embed)
            return
        if suffix in SEPARATORS:
            for frame in pd.read_csv(path, sep=SEPARATORS[suffix], chunksize=chunk_rows):
                yield features_from_frame(frame, embed)
            return
    except (OSError, ValueError, ImportError) as exc:
        raise FeatureError(f"{path}: cannot read the table ({exc})") from exc
    warnings: list[str] = []
    lines = iter_jsonl(path, warnings)
    while True:
        chunk = list(islice(lines, chunk_rows))
        if not chunk and not warnings:
            return
        yield records_to_features(iter(chunk), str(path), warnings, embed)
        warnings.clear()
        if not chunk:
            return


def load_features(path: str | Path, embed: bool = False) -> Features:
    """Features of a file: JSONL (capture log, request bodies, prompt dataset), CSV or parquet."""
    path = Path(path)
    suffix = _existing_suffix(path)
    try:
        if suffix == ".parquet":
            return features_from_frame(pd.read_parquet(path), embed)
        if suffix in SEPARATORS:
            return features_from_frame(pd.read_csv(path, sep=SEPARATORS[suffix]), embed)
    except (OSError, ValueError, ImportError) as exc:
        raise FeatureError(f"{path}: cannot read the table ({exc})") from exc
    warnings: list[str] = []
    return records_to_features(iter_jsonl(path, warnings), str(path), warnings, embed)
