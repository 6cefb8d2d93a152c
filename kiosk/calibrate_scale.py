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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

from kiosk import scale

AUTOLINK_GAP = 0.02      # twice the threshold's safety gap: a wrong link nobody confirmed is the worst outcome
AUTOLINK_STEP = 0.005    # suggestions are rounded down to this grid (what a person would type)
MIN_GALLERY = 1000       # below this many enrolled people a zero count says little about a district


@dataclass(frozen=True)
class AutolinkChoice:
    """The suggested ``autolink_below`` (None: no safe value) and what it was derived from."""
    value: float | None
    nearest_wrong: float     # smallest distance of any wrong proposal seen (inf: none)
    linked_right: int        # returning visits that would link without asking at ``value``
    returning: int
    why: str


def choose_autolink(wrong: Sequence[float], right: Sequence[float], *, threshold: float, gallery: int,
                    gap: float = AUTOLINK_GAP, step: float = AUTOLINK_STEP,
                    min_gallery: int = MIN_GALLERY) -> AutolinkChoice:
    """The largest grid value at least ``gap`` below every wrong proposal's distance, capped at the threshold.

    ``wrong``: distances of accepted matches to the wrong person (threshold and margin already applied);
    ``right``: distances of returning visits' own matches that were accepted. A value links a match when its
    distance is below it, so ``value <= nearest wrong - gap`` keeps every wrong one out with room to spare.
    """
    nearest = min(wrong, default=math.inf)
    if gallery < min_gallery:
        return AutolinkChoice(None, nearest, 0, len(right),
                              f"the gallery has {gallery} enrolled people; at least {min_gallery} are needed to "
                              f"vouch for linking without confirmation")
    ceiling = min(threshold, nearest - gap)
    value = math.floor(ceiling / step + 1e-9) * step
    if value > ceiling + 1e-9:                # floating-point fuzz must never round past the ceiling
        value -= step
    value = round(value, 6)
    linked = sum(d < value for d in right)
    if value <= 0 or linked == 0:
        return AutolinkChoice(None, nearest, 0, len(right),
                              f"the nearest wrong match is at {nearest:.3f}; {gap} below it no returning visit "
                              f"links either, so no value is safe and useful")
    return AutolinkChoice(value, nearest, linked, len(right),
                          "no wrong match seen" if math.isinf(nearest) else
                          f"{gap} below the nearest wrong match ({nearest:.3f})")


def _row(out: IO[str], label: str, probes: Sequence[scale.Probe]) -> list[float]:
    """Print one scenario line; return the distances of its wrong proposals."""
    wrong = sorted(p.match.distance for p in probes if p.proposed_wrong)
    kinds = {k: sum(p.kind == k for p in probes) for k in (scale.RETURNING, scale.STRANGER, scale.LEFT_OUT)}
    out.write(f"  {label:<34} {kinds[scale.RETURNING]:>5} returning {kinds[scale.STRANGER]:>5} strangers "
              f"{kinds[scale.LEFT_OUT]:>5} left out   wrong matches {len(wrong):>4}"
              f"{f', nearest at {wrong[0]:.3f}' if wrong else ''}\n")
    return wrong


def run_scale(scale_dir: Path, out: IO[str] = sys.stdout, *, threshold: float, margin: float, cache,
              limit: int | None = None) -> int:
    """Replay the scale protocol and print the suggested ``autolink_below`` (or why there is none)."""
    from kiosk.calibrate import CalibrationError, photo_folders

    try:
        folders = photo_folders(Path(scale_dir))
    except CalibrationError as exc:
        print(f"kiosk calibrate: {exc}", file=sys.stderr)
        return 2
    names = scale.sample(folders, limit)
    encodings = scale.encode_people({n: folders[n] for n in names}, cache)
    plan = scale.plan(encodings, scale.read_east_asian(Path(scale_dir)))
    out.write(f"\nkiosk calibrate --scale {scale_dir}: threshold {threshold}, margin {margin}\n")
    out.write(f"  {len(names)} people: {len(plan.returning)} return (photo 1 enrolled, photo 2 visits), "
              f"{len(plan.others)} more enrolled, {len(plan.strangers)} held back as strangers, "
              f"{len(plan.unusable)} without a usable photo; East Asian subset: {len(plan.east_asian)} people\n")
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
    choice = choose_autolink(wrong, right, threshold=threshold, gallery=plan.enrolled_total)
    if choice.value is None:
        out.write(f"no safe recognition.autolink_below: {choice.why}. Leave it unset: every face-only match "
                  f"asks the citizen to confirm.\n")
        return 0
    out.write(f"suggested recognition.autolink_below = {choice.value:.3f} ({choice.why}; "
              f"{choice.linked_right} of {choice.returning} returning visits in the full gallery would link "
              f"without asking)\n")
    out.write(f"[recognition]\nautolink_below = {choice.value:.3f}\n")
    return 0
