"""Allocation lists: complete randomization and permuted blocks, generated in advance.

A list is generated once from a secret seed, its sha256 (the *commitment*) is published
before the first patient, and allocation then reads the next entry of the patient's
stratum. Anyone holding the seed can regenerate the list and anyone holding the list can
check it against the commitment, so neither the list nor the allocations can be changed
quietly. Each stratum has its own generator, seeded from sha256(f"{label}:{seed}:{stratum}"),
so strata are independent and adding a stratum never changes another stratum's list.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from trialdesk.errors import AllocationError, CommitmentMismatch, InputRejected, ListExhausted
from trialdesk.protocol.schema import Protocol, RandomizationMethod
from trialdesk.randomization._rng import below, fingerprint, pick, seeded_rng, shuffle
from trialdesk.randomization.strata import all_strata

COLUMNS = ("stratum", "sequence", "block", "block_size", "arm")
_TITLE = "# TrialDesk allocation list"
_META = ("protocol_id", "protocol_sha256", "method", "label", "seed_fingerprint")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ListEntry:
    """One allocation: the ``sequence``-th patient (1-based) of ``stratum`` gets ``arm``.

    ``block`` (1-based within the stratum) and ``block_size`` are 0 for complete
    randomization, which has no blocks.
    """

    stratum: str
    sequence: int
    block: int
    block_size: int
    arm: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"block {self.block} of size {self.block_size}" if self.block else "no blocks"
        return f"{self.stratum} #{self.sequence}: {self.arm} ({where})"


@dataclass(frozen=True)
class AllocationList:
    """A generated (or loaded) allocation list; entries run 1, 2, 3 … within each stratum.

    ``seed_fingerprint`` is sha256 of the seed, never the seed itself: the list may be
    shown to people who must not be able to regenerate future lists.
    """

    protocol_id: str
    protocol_sha256: str
    method: RandomizationMethod
    seed_fingerprint: str
    label: str
    entries: tuple[ListEntry, ...]
    _by_stratum: dict[str, tuple[ListEntry, ...]] = field(
        init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", RandomizationMethod(self.method))
        object.__setattr__(self, "entries", tuple(self.entries))
        index: dict[str, list[ListEntry]] = {}
        for entry in self.entries:
            bucket = index.setdefault(entry.stratum, [])
            if entry.sequence != len(bucket) + 1:
                raise InputRejected(
                    f"Allocation list '{self.label}': stratum {entry.stratum} has sequence "
                    f"{entry.sequence} where {len(bucket) + 1} was expected; sequence numbers "
                    "must run 1, 2, 3 … within each stratum.", field="sequence")
            bucket.append(entry)
        object.__setattr__(self, "_by_stratum", {k: tuple(v) for k, v in index.items()})

    @property
    def strata(self) -> tuple[str, ...]:
        """The strata in the list, in order of first appearance."""
        return tuple(self._by_stratum)

    def entries_for(self, stratum: str) -> tuple[ListEntry, ...]:
        return self._by_stratum.get(stratum, ())

    def entry(self, stratum: str, sequence: int) -> ListEntry:
        """The ``sequence``-th entry (1-based) of ``stratum``; ListExhausted past the end."""
        if sequence < 1:
            raise InputRejected(f"Sequence numbers start at 1, got {sequence}.",
                                field="sequence")
        entries = self.entries_for(stratum)
        if sequence > len(entries):
            raise ListExhausted(
                f"Allocation list '{self.label}' of {self.protocol_id} has no entry {sequence} "
                f"for stratum {stratum}: all {len(entries)} entries are used. Do not improvise "
                "an allocation: call the unblinded statistician, and use the emergency procedure "
                "(sealed emergency envelopes) until a new list is published.", field="stratum")
        return entries[sequence - 1]

    # -- the published form ------------------------------------------------------
    def to_csv(self) -> str:
        """The canonical text: '#' header lines, then the entries (deterministic, '\\n')."""
        out = io.StringIO()
        out.write(_TITLE + "\n")
        for key in _META:
            out.write(f"# {key}: {getattr(self, key)}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for e in self.entries:
            writer.writerow([e.stratum, e.sequence, e.block, e.block_size, e.arm])
        return out.getvalue()

    def commitment(self) -> str:
        """sha256 (hex) of :meth:`to_csv`: published before enrolment, checked in use."""
        return hashlib.sha256(self.to_csv().encode("utf-8")).hexdigest()

    def verify(self, commitment: str) -> None:
        """CommitmentMismatch unless this list is the one whose commitment was published."""
        expected, actual = commitment.strip().lower(), self.commitment()
        if expected != actual:
            raise CommitmentMismatch(
                f"Allocation list '{self.label}' of {self.protocol_id}: the list in use is not "
                f"the list that was published (expected sha256 {expected}, actual {actual}). "
                "Stop allocating from it and call the unblinded statistician.", field="commitment")

    @classmethod
    def from_csv(cls, text: str) -> AllocationList:
        """Read :meth:`to_csv` text back (exactly); InputRejected naming the bad line."""
        meta: dict[str, str] = {}
        entries: list[ListEntry] = []
        next_sequence: dict[str, int] = {}
        header_seen = False
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.rstrip("\r")

            def bad(problem: str, number: int = number, line: str = line) -> InputRejected:
                return InputRejected(f"Allocation list, line {number}: {problem}: {line!r}",
                                     field="allocation_list")

            if not line.strip():
                continue
            if line.startswith("#"):
                key, sep, value = line[1:].strip().partition(": ")
                if sep and key in _META:
                    if key in meta:
                        raise bad(f"'{key}' is given twice")
                    meta[key] = value.strip()
                continue
            row = next(csv.reader([line]))
            if not header_seen:
                if tuple(row) != COLUMNS:
                    raise bad(f"expected the column header '{','.join(COLUMNS)}'")
                header_seen = True
                continue
            if len(row) != len(COLUMNS):
                raise bad(f"expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), "
                          f"found {len(row)}")
            stratum, sequence, block, size, arm = row
            numbers = (sequence, block, size)
            if not all(v.isdigit() and str(int(v)) == v for v in numbers):
                raise bad("sequence, block and block_size must be whole numbers")
            if not stratum or not arm:
                raise bad("stratum and arm must not be empty")
            expected = next_sequence.get(stratum, 1)
            if int(sequence) != expected:
                raise bad(f"sequence {sequence} where {expected} was expected for {stratum}")
            next_sequence[stratum] = expected + 1
            entries.append(ListEntry(stratum, int(sequence), int(block), int(size), arm))
        missing = [key for key in _META if key not in meta]
        if missing or not header_seen:
            raise InputRejected("Allocation list: not a TrialDesk allocation list (missing "
                                f"{', '.join(missing) or 'the column header'}).",
                                field="allocation_list")
        try:
            method = RandomizationMethod(meta["method"])
        except ValueError:
            raise InputRejected(f"Allocation list: unknown method '{meta['method']}'.",
                                field="allocation_list") from None
        return cls(meta["protocol_id"], meta["protocol_sha256"], method,
                   meta["seed_fingerprint"], meta["label"], tuple(entries))

    def to_dict(self) -> dict[str, Any]:
        return {"protocol_id": self.protocol_id, "protocol_sha256": self.protocol_sha256,
                "method": self.method.value, "seed_fingerprint": self.seed_fingerprint,
                "label": self.label, "commitment": self.commitment(),
                "entries": [e.to_dict() for e in self.entries]}

    def __str__(self) -> str:
        return (f"Allocation list '{self.label}' of {self.protocol_id} ({self.method.value}, "
                f"{len(self.entries)} entries in {len(self.strata)} strata, "
                f"sha256 {self.commitment()[:12]}…)")


def _check_block_sizes(sizes: tuple[int, ...], cycle: int) -> tuple[int, ...]:
    if not sizes:
        raise AllocationError("Permuted blocks need block sizes (none given, none in the "
                              "protocol).", field="block_sizes")
    bad = [b for b in sizes if b <= 0 or b % cycle]
    if bad:
        raise AllocationError(f"Block sizes {bad} are not positive multiples of the ratio "
                              f"total {cycle}.", field="block_sizes")
    return sizes


def generate_list(protocol: Protocol, *, seed: str, size_per_stratum: int,
                  strata: list[str] | None = None, method: RandomizationMethod | None = None,
                  block_sizes: tuple[int, ...] | None = None,
                  label: str = "main") -> AllocationList:
    """Generate the allocation list of ``protocol`` (its method and block sizes unless
    overridden) with at least ``size_per_stratum`` entries per stratum.

    Permuted blocks: each block's size is drawn uniformly from ``block_sizes``, a block
    holds each arm ``ratio[arm] * size / sum(ratio)`` times in random order, and a
    stratum's list grows by whole blocks (a cut block would break the balance the
    blocks exist for). Complete randomization draws each entry independently with
    probabilities proportional to the ratio.
    """
    rand = protocol.randomization
    method = RandomizationMethod(method or rand.method)
    if not seed:
        raise InputRejected("An allocation list needs a non-empty secret seed.", field="seed")
    if not _LABEL.match(label):
        raise InputRejected(f"List label '{label}' may hold only letters, digits, '_', '.', "
                            "'-'.", field="label")
    if size_per_stratum < 0:
        raise InputRejected("size_per_stratum must not be negative.", field="size_per_stratum")
    valid = all_strata(protocol)
    strata = list(valid if strata is None else strata)
    unknown = [s for s in strata if s not in valid]
    if unknown or len(set(strata)) != len(strata):
        raise InputRejected(f"Strata {unknown or strata} are unknown or repeated; strata of "
                            f"{protocol.protocol_id}: {', '.join(valid)}.", field="strata")
    arms = list(protocol.arm_ids)
    weights = [rand.ratio[arm] for arm in arms]
    cycle = sum(weights)
    if method is RandomizationMethod.MINIMIZATION:
        raise AllocationError(
            "Minimization is not list-based: each arm depends on the patients already "
            "allocated, so no list can be made in advance. Allocate with minimize(); for "
            "sealed envelopes use generate_emergency_lists().", field="method")
    if method is RandomizationMethod.PERMUTED_BLOCKS:
        sizes = _check_block_sizes(tuple(block_sizes or rand.block_sizes), cycle)
    elif block_sizes:
        raise AllocationError("Block sizes apply only to permuted blocks.", field="block_sizes")

    entries: list[ListEntry] = []
    for stratum in strata:
        rng = seeded_rng(label, seed, stratum)
        if method is RandomizationMethod.COMPLETE:
            entries += [ListEntry(stratum, i, 0, 0, pick(rng.random(), arms, weights))
                        for i in range(1, size_per_stratum + 1)]
            continue
        arms_made, block = 0, 0
        while arms_made < size_per_stratum:
            block += 1
            size = sizes[0] if len(sizes) == 1 else sizes[below(rng, len(sizes))]
            content = [a for a, w in zip(arms, weights, strict=True)
                       for _ in range(w * size // cycle)]
            shuffle(rng, content)
            entries += [ListEntry(stratum, arms_made + i, block, size, arm)
                        for i, arm in enumerate(content, 1)]
            arms_made += size
    return AllocationList(protocol.protocol_id, protocol.content_sha256, method,
                          fingerprint(seed), label, tuple(entries))


def generate_emergency_lists(protocol: Protocol, *, seed: str,
                             per_stratum: int | None = None) -> dict[str, AllocationList]:
    """One list per site (label ``emergency-{site}``) for sealed emergency envelopes, used
    when the server cannot be reached; ``per_stratum`` defaults to the protocol's
    ``emergency_envelopes_per_stratum``.

    Envelopes must exist before they are needed, so a minimization protocol gets
    balanced permuted blocks of the smallest size that fits the ratio instead.
    """
    rand = protocol.randomization
    size = rand.emergency_envelopes_per_stratum if per_stratum is None else per_stratum
    method, sizes = rand.method, rand.block_sizes or None
    if method is RandomizationMethod.MINIMIZATION:
        method, sizes = RandomizationMethod.PERMUTED_BLOCKS, (sum(rand.ratio.values()),)
    if method is not RandomizationMethod.PERMUTED_BLOCKS:
        sizes = None
    return {site.id: generate_list(protocol, seed=seed, size_per_stratum=size, method=method,
                                   block_sizes=sizes, label=f"emergency-{site.id}")
            for site in protocol.sites}
