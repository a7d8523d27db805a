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

Each block is framed on its own (``frame_layout1``/``frame_layout2``: cheap checks, no
per-sample work); ``decode`` then assembles a whole batch of variants with array operations,
which is what keeps a 500,000-sample biobank file from costing a Python loop per sample.

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
LAYOUT1_DIVISOR = 32768


class BgenError(Exception):
    """A record (or the file) breaks the BGEN spec; the message says how, for a person."""


class BgenFramingError(BgenError):
    """The bytes of a variant cannot be delimited, so nothing after it can be read either."""


@dataclass
class Block:
    """One variant's genotype block, framed and checked, its values not yet assembled."""

    n_alleles: int
    ploidy_bytes: np.ndarray  # uint8 per sample: ploidy, plus 128 when missing
    low: int  # the block's declared ploidy range
    high: int
    phased: bool
    divisor: int  # a stored value v is the probability v / divisor
    stored: np.ndarray  # unsigned integers; layout 2 leaves out the last value of each group


@dataclass
class Decoded:
    """A batch of variants' genotypes, flat and sample by sample (variant-major)."""

    ploidy: np.ndarray  # int32 per genotype
    missing: np.ndarray  # bool per genotype
    phased: np.ndarray  # bool per genotype
    probabilities: np.ndarray  # float64: the values of every non-missing genotype in order
    probability_counts: np.ndarray  # int64 per genotype (0 when missing)
    calls: np.ndarray  # int32, ``ploidy`` values per genotype


def unpack_bits(data: bytes | memoryview, bits: int, count: int) -> np.ndarray:
    """``count`` unsigned integers of ``bits`` bits each, packed little-endian.

    Whole-byte widths stay in their own dtype (a view of the block, no copy); others are int64.
    """
    if bits in (8, 16, 32):
        return np.frombuffer(data, dtype=f"<u{bits // 8}", count=count)
    raw = np.frombuffer(data, dtype=np.uint8, count=(count * bits + 7) // 8)
    flat = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
    return flat.astype(np.int64) @ (np.int64(1) << np.arange(bits, dtype=np.int64))


def _stored_per_sample(ploidy: np.ndarray | int, n_alleles: int, phased: bool):
    """Values a sample stores: Z(K-1) phased, C(Z+K-1, K-1) - 1 unphased."""
    if phased:
        return ploidy * (n_alleles - 1)
    if isinstance(ploidy, int):
        return math.comb(ploidy + n_alleles - 1, n_alleles - 1) - 1
    table = np.array([math.comb(z + n_alleles - 1, n_alleles - 1) - 1 for z in range(64)])
    return table[ploidy]


def frame_layout2(block: bytes, n_samples: int, n_alleles: int) -> Block:
    """Check one decompressed layout-2 block's header and size; unpack its stored values."""
    if len(block) < 10 + n_samples:
        raise BgenError(f"its genotype block is {len(block)} bytes, too short for its own header")
    n = int.from_bytes(block[0:4], "little")
    k = int.from_bytes(block[4:6], "little")
    if n != n_samples:
        raise BgenError(f"its genotype block is for {n} samples where the file has {n_samples}")
    if k != n_alleles:
        raise BgenError(f"its genotype block has {k} alleles where the variant lists {n_alleles}")
    low, high = block[6], block[7]
    phased_flag, bits = block[8 + n], block[9 + n]
    if phased_flag > 1:
        raise BgenError(f"its phased flag is {phased_flag} where 0 or 1 is allowed")
    if not 1 <= bits <= 32:
        raise BgenError(f"it stores {bits} bits per probability where 1 to 32 are allowed")
    if low > high or high > 63:
        raise BgenError(f"its ploidy range {low}-{high} is impossible")
    ploidy_bytes = np.frombuffer(block, dtype=np.uint8, count=n, offset=8)
    phased = phased_flag == 1
    if low == high:  # every sample has this ploidy (checked with the batch): plain arithmetic
        total = n * _stored_per_sample(int(low), k, phased)
    else:
        total = int(_stored_per_sample(ploidy_bytes & 63, k, phased).sum())
    data = memoryview(block)[10 + n :]
    needed = (total * bits + 7) // 8
    if len(data) < needed:
        raise BgenError(
            f"its genotype block holds {len(data)} bytes of probabilities where {total} values "
            f"of {bits} bits need {needed}"
        )
    stored = unpack_bits(data, bits, total)
    return Block(k, ploidy_bytes, int(low), int(high), phased, (1 << bits) - 1, stored)


def frame_layout1(block: bytes, n_samples: int) -> Block:
    """One decompressed layout-1 block: 3 uint16 per sample, diploid and biallelic."""
    if len(block) != 6 * n_samples:
        raise BgenError(
            f"its genotype block is {len(block)} bytes where {n_samples} samples need "
            f"{6 * n_samples}"
        )
    stored = np.frombuffer(block, dtype="<u2")
    missing = (stored.reshape(n_samples, 3) == 0).all(axis=1)
    ploidy_bytes = np.where(missing, 130, 2).astype(np.uint8)
    return Block(2, ploidy_bytes, 2, 2, False, LAYOUT1_DIVISOR, stored)


@lru_cache(maxsize=64)
def colex_genotypes(n_alleles: int, ploidy: int) -> np.ndarray:
    """Every genotype of ``ploidy`` alleles out of ``n_alleles``, one row each, in colex order.

    Rows are allele indices in ascending order; colex order compares them from the last allele
    back (00, 01, 11, 02, 12, 22 for three alleles), the order BGEN and VCF store GP in.
    """
    rows = sorted(combinations_with_replacement(range(n_alleles), ploidy), key=lambda r: r[::-1])
    return np.array(rows, dtype=np.int32).reshape(len(rows), ploidy)


def _exclusive(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


Shape = tuple[int, int, bool]  # (alleles, ploidy, phased): genotypes decoded alike


def _shapes(blocks: list[Block]) -> set[Shape]:
    """The shapes present, from each block's ploidy range (a look at samples only if mixed)."""
    shapes: set[Shape] = set()
    for b in blocks:
        ploidies = [b.low] if b.low == b.high else np.unique(b.ploidy_bytes & 63).tolist()
        shapes.update((b.n_alleles, int(z), b.phased) for z in ploidies)
    return shapes


def _select(shape: Shape, alleles, ploidy, phased) -> np.ndarray:
    """Which genotypes of a batch have this shape."""
    k, z, is_phased = shape
    return (alleles == k) & (ploidy == z) & (phased == is_phased)


def _hard_calls(full, full_counts, ploidy, missing, phased, alleles, shapes) -> np.ndarray:
    """Calls of every genotype of a batch (see the module docstring), shape by shape."""
    calls = np.full(int(ploidy.sum()), -1, dtype=np.int32)
    full_starts, call_starts = _exclusive(full_counts), _exclusive(ploidy)
    for shape in shapes:
        k, z, is_phased = shape
        width = k if is_phased else math.comb(z + k - 1, k - 1)
        if z == 0 or width > MAX_CALLED_GENOTYPES:
            continue
        chosen = np.zeros(len(ploidy), dtype=bool)
        chosen[_select(shape, alleles, ploidy, phased)] = True
        who = np.flatnonzero(chosen & ~missing)
        if is_phased:  # each haplotype on its own: K allele probabilities
            owner, slot = np.repeat(who, z), np.tile(np.arange(z), len(who))
            starts, targets = full_starts[owner] + slot * k, call_starts[owner] + slot
        else:
            starts = full_starts[who]
        grid = full[starts[:, None] + np.arange(width)]
        best = grid.argmax(axis=1)
        called = grid[np.arange(len(grid)), best] >= HARD_CALL_THRESHOLD
        if is_phased:
            calls[targets[called]] = best[called]
        else:
            calls[call_starts[who[called]][:, None] + np.arange(z)] = colex_genotypes(k, z)[
                best[called]
            ]
    return calls


def _check_ploidy(blocks: list[Block], ploidy: np.ndarray, n: int) -> dict[int, str]:
    """Blocks with a sample outside their declared ploidy range (index -> why)."""
    ranges = {(b.low, b.high) for b in blocks}
    if len(ranges) == 1:
        low, high = ranges.pop()
        outside = (ploidy < low) | (ploidy > high)
    else:
        outside = (ploidy < np.repeat([b.low for b in blocks], n)) | (
            ploidy > np.repeat([b.high for b in blocks], n)
        )
    bad: dict[int, str] = {}
    for cell in np.flatnonzero(outside).tolist():
        variant, sample = divmod(cell, n)
        block = blocks[variant]
        bad.setdefault(
            variant,
            f"sample {sample + 1} has ploidy {ploidy[cell]} outside the block's "
            f"{block.low}-{block.high}",
        )
    return bad


def decode(blocks: list[Block], n_samples: int, explicit: bool) -> tuple[Decoded, dict[int, str]]:
    """Every genotype of a batch of blocks, and the blocks that break a rule (index -> why).

    ``explicit`` is layout 1, whose blocks store every value (none is left out). Broken blocks
    are left out of the result, which covers the other blocks in order.
    """
    n = n_samples
    ploidy_bytes = np.concatenate([b.ploidy_bytes for b in blocks])
    ploidy = (ploidy_bytes & 63).astype(np.int64)
    bad = _check_ploidy(blocks, ploidy, n)
    if not bad:
        missing = ploidy_bytes >= 128
        shapes = _shapes(blocks)
        if explicit or len(shapes) == 1:
            decoded = _uniform(blocks, ploidy, missing, shapes.pop(), explicit, bad)
        else:
            decoded = _mixed(blocks, ploidy, missing, shapes, bad)
        if not bad:
            return decoded, bad
    return _without(blocks, bad, n, explicit)


NARROW = 16  # rows at most this wide are reduced column by column (numpy's axis=1 is slow)


def _row_sums(matrix: np.ndarray) -> np.ndarray:
    """Sum of each row (int64)."""
    if matrix.shape[1] > NARROW:
        return matrix.sum(axis=1, dtype=np.int64)
    total = np.zeros(matrix.shape[0], dtype=np.int64)
    for j in range(matrix.shape[1]):
        np.add(total, matrix[:, j], out=total, dtype=np.int64)
    return total


def _called_column(matrix: np.ndarray, sure: bool) -> np.ndarray:
    """Per row, the column holding the call (probability >= the threshold), or -1.

    ``sure``: each row sums to exactly 1 (layout 2 restores the last value so), so at most one
    value can pass a threshold above 1/2 and a scan for it is the argmax. Otherwise (layout 1,
    whose three values need not sum to 1) the largest value must also pass.
    """
    rows, width = matrix.shape
    if not sure or width > NARROW or HARD_CALL_THRESHOLD <= 0.5:
        if not width:
            return np.full(rows, -1, dtype=np.int64)
        best = matrix.argmax(axis=1)
        return np.where(matrix[np.arange(rows), best] >= HARD_CALL_THRESHOLD, best, -1)
    best = np.full(rows, -1, dtype=np.int64)
    for j in range(width):
        np.copyto(best, j, where=matrix[:, j] >= HARD_CALL_THRESHOLD)
    return best


def _uniform(
    blocks: list[Block],
    ploidy: np.ndarray,
    missing: np.ndarray,
    shape: Shape,
    explicit: bool,
    bad: dict[int, str],
) -> Decoded:
    """The common batch: one shape (say unphased, diploid, biallelic), as 2-D arrays.

    Every group (a genotype, or a haplotype when phased) has the same width, so putting back
    the left-out values, scaling and calling are column operations over the present groups.
    """
    k, z, phased = shape
    n = len(blocks[0].ploidy_bytes)
    per_sample = z if phased else 1  # groups per genotype
    width = k if phased else math.comb(z + k - 1, k - 1)
    stored_width = width if explicit else width - 1
    rows = len(ploidy) * per_sample
    stored = np.concatenate([b.stored for b in blocks]).reshape(rows, stored_width)
    present = ~(np.repeat(missing, per_sample) if per_sample != 1 else missing)
    kept = np.flatnonzero(present) if not present.all() else None
    if kept is not None:  # drop missing genotypes while the values are still small integers
        stored = np.compress(present, stored, axis=0)
    divisors = {b.divisor for b in blocks}
    if len(divisors) == 1:
        divisor = float(divisors.pop())
    else:
        divisor = np.repeat([float(b.divisor) for b in blocks], n * per_sample)
        divisor = divisor if kept is None else divisor[kept]
    full = np.empty((len(stored), width), dtype=np.float64)
    for j in range(stored_width):  # column by column: a strided 2-D divide is 6x slower
        np.divide(stored[:, j], divisor, out=full[:, j])
    if not explicit:
        last = divisor - _row_sums(stored)
        for row in np.flatnonzero(last < 0).tolist():
            sample = (row if kept is None else int(kept[row])) // per_sample
            bad.setdefault(sample // n, f"the probabilities of sample {sample % n + 1} exceed 1")
        np.divide(last, divisor, out=full[:, stored_width])
    if width > MAX_CALLED_GENOTYPES:  # no call table that large: every allele uncalled
        best = np.full(len(full), -1, dtype=np.int64)
    else:
        best = _called_column(full, sure=not explicit)
    if kept is not None:
        everyone = np.full(rows, -1, dtype=np.int64)
        everyone[kept] = best
        best = everyone
    if phased:
        calls = best.astype(np.int32)
    else:
        table = (
            np.vstack([colex_genotypes(k, z), np.full((1, z), -1, dtype=np.int32)])
            if width <= MAX_CALLED_GENOTYPES
            else np.full((1, z), -1, dtype=np.int32)
        )
        calls = np.take(table, best, axis=0).ravel()  # -1 picks the all-missing last row
    full_counts = np.full(len(ploidy), per_sample * width, dtype=np.int64)
    return Decoded(
        ploidy=ploidy.astype(np.int32),
        missing=missing,
        phased=np.full(len(ploidy), phased),
        probabilities=full.ravel(),
        probability_counts=np.where(missing, 0, full_counts),
        calls=calls,
    )


def _mixed(
    blocks: list[Block],
    ploidy: np.ndarray,
    missing: np.ndarray,
    shapes: set[Shape],
    bad: dict[int, str],
) -> Decoded:
    """A batch of several shapes (mixed ploidy, phasing or allele counts): flat arrays."""
    n = len(blocks[0].ploidy_bytes)
    phased = np.repeat([b.phased for b in blocks], n)
    alleles = np.repeat([b.n_alleles for b in blocks], n).astype(np.int64)
    stored = np.concatenate([b.stored for b in blocks]).astype(np.int64)
    divisor = np.repeat(np.array([b.divisor for b in blocks], dtype=np.float64), n)
    combos = np.zeros(len(ploidy), dtype=np.int64)
    for shape in shapes:
        k, z, _ = shape
        combos[_select(shape, alleles, ploidy, phased)] = math.comb(z + k - 1, k - 1)
    per_sample = np.where(phased, ploidy, 1)  # groups: a haplotype, or the whole genotype
    owner = np.repeat(np.arange(len(ploidy)), per_sample)
    group_lengths = np.where(phased[owner], alleles[owner], combos[owner]) - 1
    bounds = np.zeros(len(group_lengths) + 1, dtype=np.int64)
    np.cumsum(group_lengths, out=bounds[1:])
    running = np.zeros(len(stored) + 1, dtype=np.int64)
    np.cumsum(stored, out=running[1:])
    group_divisor = divisor[owner]
    last = group_divisor - (running[bounds[1:]] - running[bounds[:-1]])
    for cell in owner[np.flatnonzero((last < 0) & ~missing[owner])].tolist():
        bad.setdefault(cell // n, f"the probabilities of sample {cell % n + 1} exceed 1")
    n_groups = len(group_lengths)
    group_of_value = np.repeat(np.arange(n_groups), group_lengths)
    full = np.empty(len(stored) + n_groups, dtype=np.float64)
    full[np.arange(len(stored)) + group_of_value] = stored / group_divisor[group_of_value]
    full[bounds[1:] + np.arange(n_groups)] = last / group_divisor
    full_counts = np.where(phased, ploidy * alleles, combos)
    calls = _hard_calls(full, full_counts, ploidy, missing, phased, alleles, shapes)
    keep = np.repeat(~missing, full_counts)
    return Decoded(
        ploidy=ploidy.astype(np.int32),
        missing=missing,
        phased=phased,
        probabilities=full if keep.all() else full[keep],
        probability_counts=np.where(missing, 0, full_counts),
        calls=calls,
    )


def _without(
    blocks: list[Block], bad: dict[int, str], n: int, explicit: bool
) -> tuple[Decoded, dict[int, str]]:
    """Decode the blocks not in ``bad``; report every broken block by its original index."""
    keep = [i for i in range(len(blocks)) if i not in bad]
    if not keep:
        none = np.zeros(0, dtype=np.int64)
        empty = Decoded(none.astype(np.int32), none.astype(bool), none.astype(bool),
                        none.astype(np.float64), none, none.astype(np.int32))  # fmt: skip
        return empty, bad
    decoded, more = decode([blocks[i] for i in keep], n, explicit)
    return decoded, {**bad, **{keep[i]: reason for i, reason in more.items()}}
