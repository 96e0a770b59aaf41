"""A tiny generator for the example leaderboard: no training, so that the example runs anywhere in seconds.

Each sample blends one of 64 images of the built-in ``shapes32`` set (chosen by the latent) with a texture made
from the latent by a small linear layer (its weights: ``tinygan.pt``).  ``mix`` is how much of the shape is kept:
higher looks more like the real set (lower FID) — which lets the tests make a better and a worse generator.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ganmetrics.data.builtin import render_dataset

Z_DIM = 8


class TinyGenerator(nn.Module):
    """``G(z)`` → images in [-1, 1], ``[N, 3, 32, 32]``."""

    def __init__(self, mix: float = 0.8):
        super().__init__()
        self.z_dim, self.mix = Z_DIM, mix
        self.texture = nn.Linear(Z_DIM, 3 * 8 * 8)
        shapes = torch.from_numpy(render_dataset("shapes32", 64, seed=1)[0]).permute(0, 3, 1, 2)
        self.register_buffer("shapes", shapes.float() / 127.5 - 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = (z[:, 0].abs() * 1000).long() % len(self.shapes)  # which shape: a function of the latent
        texture = F.interpolate(torch.tanh(self.texture(z)).view(-1, 3, 8, 8), size=32, mode="bilinear",
                                align_corners=False)
        return self.mix * self.shapes[index] + (1 - self.mix) * texture


def make_generator(checkpoint: str | None = None, mix: float = 0.8) -> TinyGenerator:
    """The entry's factory: ``generator = "tinygan:make_generator"``, ``checkpoint`` and ``kwargs`` from the
    config."""
    G = TinyGenerator(mix=mix)
    if checkpoint is not None:
        G.texture.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return G


if __name__ == "__main__":  # writes tinygan.pt: the texture layer's weights, seeded
    torch.manual_seed(0)
    torch.save(nn.Linear(Z_DIM, 3 * 8 * 8).state_dict(), "tinygan.pt")
