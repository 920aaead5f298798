"""Temporal convolutional network with an asset embedding, as a torch module.

Only the network lives here; its training loop is :class:`fleet.models.pattern.ConvExpert`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class CausalConv1d(nn.Conv1d):
    """Conv1d that pads on the left only, so output[t] depends on input[<= t]. (B, C_in, L) -> (B, C_out, L)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self.left, 0)))


class ResidualBlock(nn.Module):
    """Two dilated causal convolutions with ReLU and a residual connection. (B, H, L) -> (B, H, L)."""

    def __init__(self, hidden: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1 = CausalConv1d(hidden, hidden, kernel_size, dilation)
        self.conv2 = CausalConv1d(hidden, hidden, kernel_size, dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.conv1(x)))
        h = self.drop(torch.relu(self.conv2(h)))
        return torch.relu(x + h)


class TemporalConvNet(nn.Module):
    """Asset-aware TCN: windows (B, C, L) + asset codes (B,) -> logits of P(up) (B,).

    Args:
        n_channels: input feature channels C.
        num_assets: size of the asset embedding table (0 = no embedding).
        asset_emb_dim: embedding width E. The embedding (B, E) is expanded along time
            to (B, E, L) and concatenated to the channels: (B, C + E, L).
        hidden: channels of the residual blocks.
        levels: residual blocks, dilations 1, 2, 4, ...
        kernel_size: taps of the dilated convolutions.
        stem_kernels: optional (K, T) array of first-layer templates (the kernel bank of
            :mod:`fleet.models.kernels`): a causal Conv1d(C, K, T) whose weights start as the template on input
            channel ``stem_channel`` and 0
            elsewhere; they are learnable. Its output (B, K, L) is concatenated to the channels.
        stem_channel: input channel the templates read (a price-level-like channel).
        dropout: dropout inside the blocks.

    Asset codes < 0 mean "unknown asset": they get the mean of the embeddings of ``known_assets`` (a bool
    (num_assets,) buffer, all True by default; a registry-sized table marks the rows actually trained).
    """

    def __init__(self, n_channels: int, num_assets: int = 0, asset_emb_dim: int = 8, hidden: int = 16,
                 levels: int = 3, kernel_size: int = 3, stem_kernels: np.ndarray | None = None,
                 stem_channel: int = 0, dropout: float = 0.1):
        super().__init__()
        self.asset_emb_dim = asset_emb_dim if num_assets > 0 else 0
        self.asset_embedding = nn.Embedding(num_assets, asset_emb_dim) if num_assets > 0 else None
        # Rows whose mean an unknown asset gets (the assets trained on); all rows unless the owner narrows it.
        self.register_buffer("known_assets", torch.ones(max(num_assets, 0), dtype=torch.bool), persistent=False)
        extra = 0
        self.stem = None
        if stem_kernels is not None:
            k, t = stem_kernels.shape
            self.stem = CausalConv1d(n_channels, k, t)
            with torch.no_grad():
                w = torch.zeros(k, n_channels, t)
                w[:, stem_channel, :] = torch.as_tensor(stem_kernels, dtype=torch.float32)
                self.stem.weight.copy_(w)
                self.stem.bias.zero_()
            extra = k
        self.input_proj = nn.Conv1d(n_channels + extra + self.asset_emb_dim, hidden, kernel_size=1)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden, kernel_size, 2 ** i, dropout) for i in range(levels)])
        self.head = nn.Linear(hidden, 1)

    def embed(self, x: torch.Tensor, asset_ids: torch.Tensor | None) -> torch.Tensor:
        """(B, C', L) -> (B, C' + E, L): the asset embedding expanded along time and concatenated."""
        if self.asset_embedding is None:
            return x
        if asset_ids is None:
            raise ValueError("TemporalConvNet has an asset embedding: asset_ids (B,) is required")
        known = asset_ids >= 0
        emb = self.asset_embedding(asset_ids.clamp(min=0))
        if not bool(known.all()):
            weight = self.asset_embedding.weight
            rows = getattr(self, "known_assets", None)  # absent on modules pickled before it existed
            if rows is not None and rows.shape[0] == weight.shape[0] and bool(rows.any()):
                weight = weight[rows]
            mean = weight.mean(dim=0, keepdim=True).expand_as(emb)
            emb = torch.where(known[:, None], emb, mean)
        return torch.cat([x, emb.unsqueeze(-1).expand(x.shape[0], self.asset_emb_dim, x.shape[-1])], dim=1)

    def forward(self, x: torch.Tensor, asset_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.stem is not None:
            x = torch.cat([x, self.stem(x)], dim=1)
        h = self.input_proj(self.embed(x, asset_ids))
        h = self.blocks(h)
        return self.head(h[:, :, -1]).squeeze(-1)
