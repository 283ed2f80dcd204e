"""Photos as tensors: between photo I/O's (H, W, 3) float arrays and the engine's tensors."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float array in [0, 1] -> (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]


def to_array(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float32 array in [0, 1]."""
    return x[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels, as a saved photo is."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0
