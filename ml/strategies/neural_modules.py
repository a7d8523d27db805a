"""PyTorch building blocks of the neural fusion strategies: encoders, fusion networks, masks.

Both networks take the same inputs: one float32 matrix per modality (in a fixed modality order)
and a boolean ``present`` matrix (batch, n_modalities). A modality that is not present is never
read as values: the intermediate network substitutes a learned "absent" embedding, the attention
network removes the modality's token from the keys. Zeros in an absent modality's matrix are
bookkeeping, not measurements, and a model that read them as "all features at the cohort mean"
would be wrong in exactly the deployments (missing genomics, no wearable) the project is about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class Encoder(nn.Module):
    """One modality's features -> a small embedding (d_m -> hidden -> emb)."""

    def __init__(self, d_in: int, hidden: int, emb: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, emb),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def head(d_in: int, hidden: int, dropout: float) -> nn.Sequential:
    """Fused representation -> one logit."""
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
    )


class IntermediateNet(nn.Module):
    """Per-modality encoders, a learned absent embedding each, concatenation, head."""

    def __init__(
        self, dims: list[int], hidden: int, emb: int, head_hidden: int, dropout: float
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(Encoder(d, hidden, emb, dropout) for d in dims)
        # Small random start, never zeros: "absent" must be a value the model can move away
        # from the embeddings of real patients, not the embedding of an average patient.
        self.absent = nn.Parameter(torch.randn(len(dims), emb) * 0.1)
        self.head = head(len(dims) * emb, head_hidden, dropout)

    def fused(self, xs: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        """(batch, n_modalities * emb): the fused representation the head reads."""
        parts = [
            torch.where(present[:, i : i + 1], encoder(x), self.absent[i])
            for i, (encoder, x) in enumerate(zip(self.encoders, xs, strict=True))
        ]
        return torch.cat(parts, dim=1)

    def forward(self, xs: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.head(self.fused(xs, present)).squeeze(-1)


class AttentionBlock(nn.Module):
    """Transformer block whose keys exclude absent modalities.

    Unlike a standard pre-norm block, tokens enter attention un-normalised: a LayerNorm there
    would rescale every modality embedding to the same size and erase how strongly a modality
    speaks for or against progression (on the dev cohort this cost ~0.01 AUROC).
    """

    def __init__(self, emb: int, heads: int, dropout: float) -> None:
        super().__init__()
        # No dropout on the attention weights: they are reported per patient and must be the
        # weights the model actually used.
        self.attn = nn.MultiheadAttention(emb, heads, dropout=0.0, batch_first=True)
        self.norm_ff = nn.LayerNorm(emb)
        self.ff = nn.Sequential(
            nn.Linear(emb, 2 * emb), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * emb, emb)
        )

    def forward(
        self, seq: torch.Tensor, padding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # need_weights=True always: it also keeps MultiheadAttention off its inference fast
        # path, so training, prediction and the reported weights run the same arithmetic.
        out, weights = self.attn(
            seq, seq, seq, key_padding_mask=padding, need_weights=True, average_attn_weights=True
        )
        seq = seq + out
        seq = seq + self.ff(self.norm_ff(seq))
        return seq, weights


class AttentionNet(nn.Module):
    """Modality tokens + a [CLS] token through masked self-attention; CLS output -> head."""

    def __init__(
        self,
        dims: list[int],
        hidden: int,
        emb: int,
        heads: int,
        layers: int,
        head_hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(Encoder(d, hidden, emb, dropout) for d in dims)
        self.modality_type = nn.Parameter(torch.randn(len(dims), emb) * 0.1)
        self.cls = nn.Parameter(torch.randn(1, 1, emb) * 0.1)
        self.blocks = nn.ModuleList(AttentionBlock(emb, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(emb)
        self.head = head(emb, head_hidden, dropout)

    def encode(
        self, xs: list[torch.Tensor], present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CLS output (batch, emb) and the last block's head-averaged weights (batch, L, L).

        Sequence position 0 is CLS, position 1 + i is modality i.
        """
        tokens = torch.stack([enc(x) for enc, x in zip(self.encoders, xs, strict=True)], dim=1)
        # Absent modalities get no token content at all (not an embedding of zeros); they are
        # also removed from the keys below, so nothing about them reaches CLS.
        tokens = (tokens + self.modality_type) * present.unsqueeze(-1)
        batch = tokens.shape[0]
        seq = torch.cat([self.cls.expand(batch, 1, -1), tokens], dim=1)
        # CLS is never padded, so every patient - even one with no modality - has a key and the
        # softmax is never over an empty set.
        padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool), ~present], dim=1)
        weights = torch.empty(0)
        for block in self.blocks:
            seq, weights = block(seq, padding)
        return self.norm(seq[:, 0]), weights

    def forward(self, xs: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        cls, _ = self.encode(xs, present)
        return self.head(cls).squeeze(-1)


def modality_dropout_mask(
    present: torch.Tensor, rate: float, generator: torch.Generator
) -> torch.Tensor:
    """Hide each present modality with probability ``rate``; never hide all of a patient's.

    Training on randomly thinned modality sets teaches the network the availability patterns of
    deployment (a clinic without sequencing, a patient without a wearable) that the training
    cohort rarely shows. When the draw would hide every present modality of a patient, one of
    them, chosen uniformly at random, is kept. Rows with no present modality stay empty.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"modality dropout rate must be in [0, 1), got {rate}")
    # Both draws are made unconditionally so the generator's stream, and therefore every later
    # batch, does not depend on how often the fallback happened.
    hide = torch.rand(present.shape, generator=generator) < rate
    tiebreak = torch.rand(present.shape, generator=generator)
    keep = present & ~hide
    emptied = present.any(dim=1) & ~keep.any(dim=1)
    chosen = tiebreak.masked_fill(~present, -1.0).argmax(dim=1)
    restore = nn.functional.one_hot(chosen, present.shape[1]).bool() & emptied.unsqueeze(1)
    return keep | restore


@contextlib.contextmanager
def reproducible_torch(threads: int = 1, seed: int | None = None) -> Iterator[None]:
    """Fixed thread count, deterministic kernels and (with ``seed``) a private seeded RNG.

    Floating-point sums depend on how work is split between threads, so the thread count is part
    of "same seed, same data, same predictions". The global RNG (parameter initialisation,
    ``nn.Dropout``) is forked and seeded inside the block and restored after it, so fitting a
    model neither depends on nor disturbs the caller's random state. Everything is restored on
    exit.
    """
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_only_before)
        torch.set_num_threads(threads_before)
