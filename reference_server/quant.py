"""Weight-only int8 quantization (`--quantization int8`): per-output-channel symmetric int8 weights.

Every linear layer (q/k/v, o, gate/up, down and lm_head) keeps W as int8 [out, in] plus one scale
per output channel (scale = max|row| / 127, q = round(W / scale)); the KV cache and the activations
between layers stay in the model dtype. The matmul dequantizes inside the kernel:
torch._weight_int8pack_mm (ATen's weight-only int8 GEMM; on CPU it is AVX-512 vectorized for
bfloat16 activations only, so the activations enter it as bfloat16 and the result is cast back).
Measured on this 2-core AMD EPYC, 1 thread, SmolLM2-135M's five matrix shapes, one row each:
fp32 column-block path 4.0-4.2 ms, int8pack_mm with bfloat16 activations 1.8 ms (2.3x), with float32
or float16 activations 28-33 ms (those dtypes take a scalar loop). From ~32 rows on, a bfloat16 GEMM
over the int8 weights cast to bfloat16 (exact: |q| <= 127 fits bfloat16's mantissa) beats the
int8 GEMM (128 rows: 2.9 ms vs 10.5 ms, fp32 oneDNN 8.3 ms), so prefill chunks take that path.

Embedding / lm_head: the lm_head is quantized like every other linear layer (on SmolLM2 it is 21%
of the weights). With tied embeddings the token embedding reads the lm_head's int8 rows and scales
(one copy instead of an fp32 table and an int8 head); untied embeddings stay in the model dtype
(a lookup reads a few rows, so quantizing them saves memory but no time).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from reference_server.errors import ConfigError
from reference_server.hugepages import move_params_to_hugepages
from reference_server.model import Embedding, Linear, LlamaModel

log = logging.getLogger(__name__)
QUANTIZATIONS = ("int8",)


def quantize_rows(w: torch.Tensor, scale_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8 of w [out, in]: (q int8 [out, in], scales [out] in scale_dtype).

    The scale is rounded to scale_dtype first and q is computed against the rounded scale, so
    q * scale reproduces w as closely as the kernel will see it."""
    wf = w.float()
    scales = (wf.abs().amax(dim=1) / 127.0).clamp(min=1e-12).to(scale_dtype)
    q = torch.round(wf / scales.float().unsqueeze(1)).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scales


class Int8Linear(nn.Module):
    """y = x (q * scales)^T + b with q int8 [out, in], dequantized inside the matmul."""

    GEMM_MIN_ROWS = 32  # from here on the bfloat16 GEMM over q beats int8pack_mm (see module doc)

    def __init__(self, q: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features = q.shape[0]
        self.weight = nn.Parameter(q, requires_grad=False)
        self.scales = nn.Parameter(scales, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.fused_kernel = True  # False where the device lacks _weight_int8pack_mm (see check_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.scales.dtype
        xa = x.to(act)
        if self.fused_kernel and x.shape[0] < self.GEMM_MIN_ROWS:
            y = torch._weight_int8pack_mm(xa, self.weight, self.scales).to(x.dtype)
        else:
            y = torch.mm(xa, self.weight.t().to(act)).to(x.dtype) * self.scales.to(x.dtype)
        return y if self.bias is None else y + self.bias


class Int8Embedding(nn.Module):
    """Token embedding read from a tied lm_head's int8 rows: row * its scale."""

    def __init__(self, head: Int8Linear, dtype: torch.dtype) -> None:
        super().__init__()
        self.head = [head]  # a list, so the head's parameters are not registered twice
        self.dtype = dtype

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        head = self.head[0]
        rows = F.embedding(ids, head.weight).to(self.dtype)
        return rows * head.scales.index_select(0, ids).to(self.dtype).unsqueeze(1)


def activation_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The dtype the int8 kernel takes activations (and scales) in: bfloat16 on CPU (the only
    vectorized one there), the model dtype on CUDA (bfloat16 or float16)."""
    if device.type == "cpu" or dtype == torch.float32:
        return torch.bfloat16
    return dtype


def check_kernel(device: torch.device, act: torch.dtype) -> bool:
    """Whether torch._weight_int8pack_mm runs on this device and dtype (it needs in % 8 == 0 too)."""
    x = torch.ones(1, 64, dtype=act, device=device)
    q = torch.ones(16, 64, dtype=torch.int8, device=device)
    s = torch.ones(16, dtype=act, device=device)
    try:
        return bool(
            torch.allclose(torch._weight_int8pack_mm(x, q, s).float().cpu(), torch.full((1, 16), 64.0))
        )
    except (RuntimeError, NotImplementedError) as exc:
        log.warning(
            "int8: _weight_int8pack_mm unavailable on %s/%s (%s); dequantizing per matmul", device, act, exc
        )
        return False


def dense_weight(linear: Linear) -> torch.Tensor:
    """A Linear's weight as [out, in], whether it is packed (column blocks) or plain [in, out]."""
    w = linear.weight.data
    if linear.packed is not None:  # [out / 16, in, 16] -> [in, out padded] -> [in, out]
        w = w.transpose(0, 1).reshape(w.shape[1], -1)[:, : linear.out_features]
    return w.t()


def quantize_model(model: LlamaModel, method: str) -> None:
    """Replace every Linear of a loaded model by an Int8Linear, in place (see the module doc)."""
    if method not in QUANTIZATIONS:
        raise ConfigError(
            f"unknown quantization '{method}'; use --quantization one of {', '.join(QUANTIZATIONS)}"
        )
    device, dtype = model.device, model.dtype
    act = activation_dtype(device, dtype)
    fused = check_kernel(device, act)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Linear):
                q, scales = quantize_rows(dense_weight(child), act)
                bias = None if child.bias is None else child.bias.data.clone()
                new = Int8Linear(q, scales, bias)
                new.fused_kernel = fused
                setattr(module, child_name, new)
    if model.args.tie_word_embeddings and isinstance(model.embed, Embedding):
        model.embed = Int8Embedding(model.lm_head, dtype)
    if device.type == "cpu":  # a fresh arena: the fp32 one is freed with the last weight in it
        move_params_to_hugepages(model)
