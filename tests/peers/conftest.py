"""Peer tier fixtures: the real SmolLM2 exported once, ONE real vLLM serving it for the session.

`make test-peers` builds the vLLM venv (.peers/vllm) and runs this tier. Developers can reuse what
they already have: TOLLGATE_PEERS_DIR (the folder holding vllm/), TOLLGATE_PEER_CHECKPOINT (an
exported checkpoint dir, instead of running `tollgate export`), TOLLGATE_PEER_VLLM_URL (a vLLM
already serving that checkpoint, instead of starting one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import REPO_ROOT, free_port, start_reference_server

PEERS_DIR = Path(os.environ.get("TOLLGATE_PEERS_DIR", REPO_ROOT / ".peers"))
VLLM_PYTHON = PEERS_DIR / "vllm" / "bin" / "python"
VLLM_START_TIMEOUT_S = 480.0  # 100-330 s measured on 2 shared cores (mostly torch.compile of the model)
EXPORT_TIMEOUT_S = 300.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.peers)


@dataclass
class Served:
    url: str
    model: str  # the name the server reports in /v1/models
    log_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def _export(out: Path) -> Path:
    cmd = [sys.executable, "-m", "tollgate", "export", "--model", "smollm2-135m", "--out", str(out)]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[2:])}` failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return out


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct as a Hugging Face checkpoint dir, written by `tollgate export`."""
    given = os.environ.get("TOLLGATE_PEER_CHECKPOINT")
    if given:
        return Path(given)
    return _export(tmp_path_factory.mktemp("smollm2") / "checkpoint")


@pytest.fixture(scope="session")
def untemplated_checkpoint(checkpoint, tmp_path_factory) -> Path:
    """The same checkpoint with no chat template anywhere (chat requests must be refused 400)."""
    out = tmp_path_factory.mktemp("untemplated") / "checkpoint"
    shutil.copytree(checkpoint, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    config = out / "tokenizer_config.json"
    if config.exists():
        data = json.loads(config.read_text())
        data.pop("chat_template", None)
        config.write_text(json.dumps(data))
    return out


@contextlib.contextmanager
def start_vllm(model_dir: Path, *extra: str, timeout: float = VLLM_START_TIMEOUT_S) -> Iterator[Served]:
    """Start vLLM's OpenAI server on a free loopback port; its log is in the error if it fails to start."""
    if not VLLM_PYTHON.exists():
        raise RuntimeError(
            f"no vLLM venv at {VLLM_PYTHON.parent.parent}: run `make test-peers` (or `make peers`)"
        )
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="vllm-", suffix=".log", delete=False)  # noqa: SIM115
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # vLLM's venv must not import this repository's packages
    cmd = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--dtype", "float32", "--host", "127.0.0.1", "--port", str(port), *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(f"http://127.0.0.1:{port}", str(model_dir), Path(log.name))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exited {proc.returncode}"
                    if proc.poll() is not None
                    else f"not ready in {timeout:.0f} s"
                )
                raise RuntimeError(f"vLLM {why}; its log ({log.name}):\n{served.log()[-6000:]}")
            try:
                if httpx.get(served.url + "/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        served.model = httpx.get(served.url + "/v1/models", timeout=10).json()["data"][0]["id"]
        yield served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def vllm(checkpoint) -> Served:
    """ONE real vLLM (CPU build) serving the exported SmolLM2 for the whole tier."""
    url = os.environ.get("TOLLGATE_PEER_VLLM_URL")
    if url:
        yield Served(url, httpx.get(url + "/v1/models", timeout=10).json()["data"][0]["id"])
        return
    with start_vllm(checkpoint) as served:
        yield served


@pytest.fixture(scope="session")
def reference(checkpoint):
    """The reference server serving the same exported checkpoint."""
    with start_reference_server(
        "--model", str(checkpoint), "--max-model-len", "2048", "--num-kv-blocks", "512"
    ) as server:
        yield server
