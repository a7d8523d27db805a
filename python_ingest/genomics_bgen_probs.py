"""BGEN genotype blocks to probabilities, ploidy, phasing and hard calls, decoded with numpy.

Layout 2 (BGEN v1.2 and v1.3, what UK Biobank and QCTOOL write): once decompressed, a block
holds the number of samples N (uint32), the number of alleles K (uint16), the minimum and
maximum ploidy (uint8 each), one byte per sample (ploidy in the low 6 bits, "missing" in the top
bit), a phased flag (0 or 1), the bits per probability B (1 to 32), then the probabilities
packed B bits each in little-endian bit order. An unphased sample of ploidy Z stores its
C(Z+K-1, K-1) genotype probabilities in colex order (for a diploid biallelic site: AA, AB, BB);
a phased sample stores K allele probabilities per haplotype. The last probability of each group
is left out (it is 1 minus the others) and a stored value v means v / (2^B - 1). A missing
sample still occupies its slots (as zeros).

Layout 1 (BGEN v1.1, older imputation output) is diploid and biallelic: three uint16 per sample
divided by 32768, all three zero meaning missing.

Hard calls (Glow's ``calls``, with its ``hardCallThreshold`` default of 0.9): an unphased sample
is called with the genotype whose probability is at least 0.9, a phased sample haplotype by
haplotype; below the threshold, or for a missing sample, every allele is -1. Glow leaves
non-diploid samples uncalled; we call them the same way (a haploid male X is ``[0]``), as the
QCTOOL threshold VCFs of Glow's suite do. Alleles of an unphased call are in ascending order
(``[0, 1]``), the VCF convention for an unphased genotype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations_with_replacement

import numpy as np

HARD_CALL_THRESHOLD = 0.9
MAX_CALLED_GENOTYPES = 1 << 20  # beyond this many genotypes per sample, no calls (all -1)


class BgenError(Exception):
    """A record (or the file) breaks the BGEN spec; the message says how, for a person."""


class BgenFramingError(BgenError):
    """The bytes of a variant cannot be delimited, so nothing after it can be read either."""


@dataclass
class Genotypes:
    """One variant's genotypes, flat: per-sample counts say which values are whose."""

    ploidy: np.ndarray  # uint8 per sample
    missing: np.ndarray  # bool per sample
    phased: bool
    probabilities: np.ndarray  # float64, the values of every non-missing sample in order
    probability_counts: np.ndarray  # int64 per sample (0 for a missing sample)
    calls: np.ndarray  # int32, ``ploidy`` values per sample


def unpack_bits(data: bytes | memoryview, bits: int, count: int) -> np.ndarray:
    """``count`` unsigned integers of ``bits`` bits each, packed little-endian (int64)."""
    if bits in (8, 16, 32):
        return np.frombuffer(data, dtype=f"<u{bits // 8}", count=count).astype(np.int64)
    raw = np.frombuffer(data, dtype=np.uint8, count=(count * bits + 7) // 8)
    flat = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
    return flat.astype(np.int64) @ (np.int64(1) << np.arange(bits, dtype=np.int64))


@lru_cache(maxsize=64)
def colex_genotypes(n_alleles: int, ploidy: int) -> np.ndarray:
    """Every genotype of ``ploidy`` alleles out of ``n_alleles``, one row each, in colex order.

    Rows are allele indices in ascending order; colex order compares them from the last allele
    back (00, 01, 11, 02, 12, 22 for three alleles), the order BGEN and VCF store GP in.
    """
    rows = sorted(combinations_with_replacement(range(n_alleles), ploidy), key=lambda r: r[::-1])
    return np.array(rows, dtype=np.int32).reshape(len(rows), ploidy)


def _starts(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def _calls(
    full: np.ndarray,
    full_counts: np.ndarray,
    ploidy: np.ndarray,
    missing: np.ndarray,
    phased: bool,
    n_alleles: int,
) -> np.ndarray:
    """Hard calls of every sample from its full probabilities (see the module docstring)."""
    calls = np.full(int(ploidy.sum()), -1, dtype=np.int32)
    if n_alleles == 0 or not len(calls):
        return calls
    if phased:  # one group of K allele probabilities per haplotype, haplotypes in order
        per_haplotype = full.reshape(len(calls), n_alleles)
        best = per_haplotype.argmax(axis=1)
        called = per_haplotype[np.arange(len(calls)), best] >= HARD_CALL_THRESHOLD
        calls[called] = best[called]
        calls[np.repeat(missing, ploidy)] = -1
        return calls
    full_starts, call_starts = _starts(full_counts), _starts(ploidy.astype(np.int64))
    for z in np.unique(ploidy[~missing]):
        n_genotypes = math.comb(int(z) + n_alleles - 1, n_alleles - 1)
        if z == 0 or n_genotypes > MAX_CALLED_GENOTYPES:
            continue
        samples = np.flatnonzero((ploidy == z) & ~missing)
        grid = full[full_starts[samples][:, None] + np.arange(n_genotypes)]
        best = grid.argmax(axis=1)
        called = grid[np.arange(len(samples)), best] >= HARD_CALL_THRESHOLD
        where = call_starts[samples[called]][:, None] + np.arange(int(z))
        calls[where] = colex_genotypes(n_alleles, int(z))[best[called]]
    return calls


def _assemble(
    stored: np.ndarray,
    group_lengths: np.ndarray,
    group_owner: np.ndarray,
    divisor: int,
    ploidy: np.ndarray,
    missing: np.ndarray,
    phased: bool,
    n_alleles: int,
) -> Genotypes:
    """Put back the left-out last value of every group, scale, and call."""
    n_groups = len(group_lengths)
    bounds = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(group_lengths, out=bounds[1:])
    running = np.zeros(len(stored) + 1, dtype=np.int64)
    np.cumsum(stored, out=running[1:])
    last = divisor - (running[bounds[1:]] - running[bounds[:-1]])
    over = np.flatnonzero((last < 0) & ~missing[group_owner])
    if len(over):
        sample = int(group_owner[over[0]]) + 1
        raise BgenError(f"the probabilities of sample {sample} add up to more than 1")
    full = np.empty(len(stored) + n_groups, dtype=np.float64)
    group_of_value = np.repeat(np.arange(n_groups), group_lengths)
    full[np.arange(len(stored)) + group_of_value] = stored
    full[bounds[1:] + np.arange(n_groups)] = last
    full /= divisor
    full_counts = np.bincount(group_owner, weights=group_lengths + 1, minlength=len(ploidy))
    full_counts = full_counts.astype(np.int64)
    calls = _calls(full, full_counts, ploidy, missing, phased, n_alleles)
    keep = np.repeat(~missing, full_counts)
    return Genotypes(
        ploidy=ploidy,
        missing=missing,
        phased=phased,
        probabilities=full if keep.all() else full[keep],
        probability_counts=np.where(missing, 0, full_counts),
        calls=calls,
    )


def decode_layout2(block: bytes, n_samples: int, n_alleles: int) -> Genotypes:
    """One decompressed layout-2 genotype block (BgenError says what is wrong with it)."""
    if len(block) < 10 + n_samples:
        raise BgenError(f"its genotype block is {len(block)} bytes, too short for its own header")
    n = int.from_bytes(block[0:4], "little")
    k = int.from_bytes(block[4:6], "little")
    if n != n_samples:
        raise BgenError(f"its genotype block is for {n} samples where the file has {n_samples}")
    if k != n_alleles:
        raise BgenError(f"its genotype block has {k} alleles where the variant lists {n_alleles}")
    low, high = block[6], block[7]
    raw_ploidy = np.frombuffer(block, dtype=np.uint8, count=n, offset=8)
    phased_flag, bits = block[8 + n], block[9 + n]
    if phased_flag > 1:
        raise BgenError(f"its phased flag is {phased_flag} where 0 or 1 is allowed")
    if not 1 <= bits <= 32:
        raise BgenError(f"it stores {bits} bits per probability where 1 to 32 are allowed")
    ploidy, missing = raw_ploidy & 63, raw_ploidy >= 128
    outside = np.flatnonzero(((ploidy < low) | (ploidy > high)) & ~missing)
    if len(outside):
        i = int(outside[0])
        raise BgenError(f"sample {i + 1} has ploidy {ploidy[i]} outside the block's {low}-{high}")
    phased = phased_flag == 1
    owners = np.arange(n)
    if phased:  # K - 1 stored values per haplotype
        group_owner = np.repeat(owners, ploidy)
        group_lengths = np.full(len(group_owner), k - 1, dtype=np.int64)
    else:  # C(Z + K - 1, K - 1) - 1 stored values per sample
        combos = {int(z): math.comb(int(z) + k - 1, k - 1) - 1 for z in np.unique(ploidy)}
        lookup = np.zeros(64, dtype=np.int64)
        for z, c in combos.items():
            lookup[z] = c
        group_owner, group_lengths = owners, lookup[ploidy]
    total = int(group_lengths.sum())
    data = memoryview(block)[10 + n :]
    needed = (total * bits + 7) // 8
    if len(data) < needed:
        raise BgenError(
            f"its genotype block holds {len(data)} bytes of probabilities where {total} values "
            f"of {bits} bits need {needed}"
        )
    stored = unpack_bits(data, bits, total)
    divisor = (1 << bits) - 1
    return _assemble(stored, group_lengths, group_owner, divisor, ploidy, missing, phased, k)


def decode_layout1(block: bytes, n_samples: int) -> Genotypes:
    """One decompressed layout-1 block: 3 uint16 per sample (/32768), diploid and biallelic."""
    if len(block) != 6 * n_samples:
        raise BgenError(
            f"its genotype block is {len(block)} bytes where {n_samples} samples need "
            f"{6 * n_samples}"
        )
    raw = np.frombuffer(block, dtype="<u2").reshape(n_samples, 3)
    missing = (raw == 0).all(axis=1)
    ploidy = np.full(n_samples, 2, dtype=np.uint8)
    full = raw.astype(np.float64).ravel() / 32768.0
    counts = np.full(n_samples, 3, dtype=np.int64)
    calls = _calls(full, counts, ploidy, missing, False, 2)
    keep = np.repeat(~missing, 3)
    return Genotypes(
        ploidy=ploidy,
        missing=missing,
        phased=False,
        probabilities=full if keep.all() else full[keep],
        probability_counts=np.where(missing, 0, counts),
        calls=calls,
    )
