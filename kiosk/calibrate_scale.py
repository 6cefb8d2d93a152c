"""``kiosk calibrate --scale DIR``: below which distance may a face alone link a visit? Possibly nowhere.

A face-only match links nothing by itself: the kiosk shows the masked name and the citizen confirms. Only
below ``recognition.autolink_below`` (unset by default) does it link without asking, and this command is the
only thing that may suggest a value: it replays ``kiosk.scale``'s protocol on a large gallery (returning
visits, held-back strangers, every enrolled person left out in turn) at every gallery size, and once more
with the East Asian subset alone as the gallery, all through ``FaceIndex.match`` with the configured
threshold and margin. Every accepted match to the wrong person is a false accept at its distance; the
suggestion stays ``AUTOLINK_GAP`` below the nearest of them all (and never above the threshold). When that
leaves no returning visit to link, or the gallery is too small to vouch for anything, no value is safe and
``autolink_below`` must stay unset. It prints; it never writes the config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping, Sequence

import numpy as np

from kiosk import scale
from kiosk.calibrate import EncodingCache, photo_folders

AUTOLINK_GAP = 0.02      # twice the threshold's safety gap: a wrong link nobody confirmed is the worst outcome
AUTOLINK_STEP = 0.005    # suggestions are rounded down to this grid (what a person would type)
MIN_GALLERY = 1000       # below this many enrolled people a zero count says little about a district
DISTRICT = 10_000        # citizens with face templates a district's kiosk may hold
TOLERANCE = 1e-3         # at most one visit in this many may meet a wrong citizen under the value


@dataclass(frozen=True)
class AutolinkChoice:
    """The suggested ``autolink_below`` (None: no safe value) and what it was derived from."""
    value: float | None
    candidate: float | None  # the value zero false accepts allowed, before the evidence check
    nearest_wrong: float     # smallest distance of any wrong proposal seen (inf: none)
    linked_right: int        # returning visits that would link without asking at ``candidate``
    pairs_needed: int        # different-person pairs of the served population needed to vouch for it
    why: str


def pairs_needed(district: int = DISTRICT, tolerance: float = TOLERANCE) -> int:
    """Different-person pairs that must all lie above a value to vouch for it in a gallery of ``district``.

    A visitor meets ``district`` enrolled citizens; with a share p of different-person pairs under the value,
    about ``district * p`` wrong citizens lie under it. Zero pairs under it among n bound p by 3 / n (95 %,
    the rule of three), so ``district * 3 / n <= tolerance`` needs n >= 3 * district / tolerance.
    """
    return math.ceil(3 * district / tolerance)


def choose_autolink(wrong: Sequence[float], right: Sequence[float], served_pairs: Sequence[float] | np.ndarray, *,
                    threshold: float, gallery: int, gap: float = AUTOLINK_GAP, step: float = AUTOLINK_STEP,
                    min_gallery: int = MIN_GALLERY, district: int = DISTRICT,
                    tolerance: float = TOLERANCE) -> AutolinkChoice:
    """The largest grid value ``gap`` below every wrong proposal (capped at the threshold), if the data vouch for it.

    ``wrong``: distances of accepted matches to the wrong person (threshold and margin already applied);
    ``right``: distances of returning visits' accepted own matches; ``served_pairs``: distances between
    photos of different people of the population the kiosk serves (the East Asian subset). A value links a
    match below it. It is suggested only when it links some returning visit, no served pair lies under it,
    and there are enough served pairs to bound the wrong links in a gallery of ``district`` (``pairs_needed``).
    """
    nearest = min(wrong, default=math.inf)
    needed = pairs_needed(district, tolerance)
    if gallery < min_gallery:
        return AutolinkChoice(None, None, nearest, 0, needed,
                              f"the gallery has {gallery} enrolled people; at least {min_gallery} are needed to "
                              f"vouch for linking without confirmation")
    ceiling = min(threshold, nearest - gap)
    candidate = math.floor(ceiling / step + 1e-9) * step
    if candidate > ceiling + 1e-9:            # floating-point fuzz must never round past the ceiling
        candidate -= step
    candidate = round(candidate, 6)
    linked = sum(d < candidate for d in right)
    if candidate <= 0 or linked == 0:
        return AutolinkChoice(None, None, nearest, 0, needed,
                              f"the nearest wrong match is at {nearest:.3f}; {gap} below it no returning visit "
                              f"links either")
    under = int(np.count_nonzero(np.asarray(served_pairs, float) < candidate))
    if under:
        return AutolinkChoice(None, candidate, nearest, linked, needed,
                              f"{under} pairs of different East Asian people lie under {candidate:.3f}")
    if len(served_pairs) < needed:
        return AutolinkChoice(None, candidate, nearest, linked, needed,
                              f"{candidate:.3f} gave zero false accepts here, but the East Asian subset has "
                              f"{len(served_pairs):,} different-person pairs; vouching for fewer than one wrong link "
                              f"in {round(1 / tolerance):,} visits among {district:,} citizens takes {needed:,} "
                              f"pairs, none under the value")
    return AutolinkChoice(candidate, candidate, nearest, linked, needed,
                          "no wrong match seen" if math.isinf(nearest) else
                          f"{gap} below the nearest wrong match ({nearest:.3f}), and no East Asian pair "
                          f"of different people under it among {len(served_pairs):,}")


def different_person_pairs(encodings: Mapping[str, Sequence[np.ndarray | None]], names: Sequence[str],
                           aliases: frozenset[frozenset[str]] = frozenset()) -> np.ndarray:
    """Distances between every two usable photos of different people among ``names`` (aliases excluded)."""
    owners = [n for n in names for _ in scale.usable(encodings[n])]
    if len(owners) < 2:
        return np.empty(0)
    matrix = np.stack([e for n in names for e in scale.usable(encodings[n])]).astype(np.float64)
    squared = np.einsum("ij,ij->i", matrix, matrix)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * matrix @ matrix.T, 0))
    first, second = np.triu_indices(len(owners), k=1)
    keep = np.array([owners[a] != owners[b] and frozenset((owners[a], owners[b])) not in aliases
                     for a, b in zip(first, second)], bool)
    return distances[first[keep], second[keep]]


def _row(out: IO[str], label: str, probes: Sequence[scale.Probe]) -> list[float]:
    """Print one scenario line; return the distances of its wrong proposals."""
    wrong = sorted(p.match.distance for p in probes if p.proposed_wrong)
    kinds = {k: sum(p.kind == k for p in probes) for k in (scale.RETURNING, scale.STRANGER, scale.LEFT_OUT)}
    out.write(f"  {label:<34} {kinds[scale.RETURNING]:>5} returning {kinds[scale.STRANGER]:>5} strangers "
              f"{kinds[scale.LEFT_OUT]:>5} left out   wrong matches {len(wrong):>4}"
              f"{f', nearest at {wrong[0]:.3f}' if wrong else ''}\n")
    return wrong


def run_scale(scale_dir: Path, out: IO[str], *, threshold: float, margin: float, cache: EncodingCache,
              limit: int | None = None) -> int:
    """Replay the scale protocol and write the suggested ``autolink_below`` (or why there is none) to ``out``.

    A folder that cannot be used raises :class:`kiosk.calibrate.CalibrationError` (the CLI says it in a line).
    """
    folders = photo_folders(Path(scale_dir))
    names = scale.sample(list(folders), limit)
    encodings = scale.encode_people({n: folders[n] for n in names}, cache)
    plan = scale.plan(encodings, scale.read_east_asian(Path(scale_dir)),
                      aliases=scale.aliases_of({n: folders[n] for n in names}))
    out.write(f"\nkiosk calibrate --scale {scale_dir}: threshold {threshold}, margin {margin}\n")
    out.write(f"  {len(names)} people: {len(plan.returning)} return (photo 1 enrolled, photo 2 visits), "
              f"{len(plan.others)} more enrolled, {len(plan.strangers)} held back as strangers, "
              f"{len(plan.unusable)} without a usable photo; East Asian subset: {len(plan.east_asian)} people; "
              f"one person under two names (not counted): "
              f"{', '.join(' = '.join(sorted(p)) for p in sorted(plan.aliases, key=sorted)) or 'none'}\n")
    wrong: list[float] = []
    right: list[float] = []
    for size in plan.sizes():
        probes = scale.replay(plan, encodings, size, threshold=threshold, margin=margin)
        wrong += _row(out, f"gallery of {size}", probes)
        wrong += _row(out, f"  East Asian visitors", scale.east_asian_probes(probes, plan.east_asian))
        right = [p.match.distance for p in probes if p.proposed_right]
    gallery, strangers = scale.east_asian_gallery(plan)
    if len(gallery) > 2:
        probes = scale.replay(plan, encodings, 0, threshold=threshold, margin=margin, gallery=gallery,
                              strangers=strangers)
        wrong += _row(out, f"East Asian people alone ({len(gallery)})", probes)
    served = different_person_pairs(encodings, sorted(n for n in plan.east_asian if n in encodings), plan.aliases)
    choice = choose_autolink(wrong, right, served, threshold=threshold, gallery=plan.enrolled_total)
    returning = len(plan.returning)
    if choice.candidate is not None:
        out.write(f"  zero false accepts at every size (East Asian visitors and gallery included) below "
                  f"{choice.candidate:.3f} ({AUTOLINK_GAP} under the nearest wrong match, {choice.nearest_wrong:.3f}): "
                  f"{choice.linked_right} of {returning} returning visits would link without asking\n")
    out.write(f"  East Asian different-person pairs: {len(served):,}, nearest at "
              f"{served.min() if len(served) else math.inf:.3f}; needed to vouch for a value: {choice.pairs_needed:,} "
              f"(fewer than 1 wrong link in {round(1 / TOLERANCE):,} visits among {DISTRICT:,} citizens)\n")
    if choice.value is None:
        out.write(f"no safe recognition.autolink_below: {choice.why}. Leave it unset: every face-only match "
                  f"asks the citizen to confirm.\n")
        return 0
    out.write(f"suggested recognition.autolink_below = {choice.value:.3f} ({choice.why}; "
              f"{choice.linked_right} of {returning} returning visits would link without asking)\n")
    out.write(f"[recognition]\nautolink_below = {choice.value:.3f}\n")
    return 0
