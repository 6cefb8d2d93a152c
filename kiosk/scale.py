"""The district-scale protocol: a large gallery, one enrolled photo per person, visits replayed as it grows.

Shared by ``benchmarks/recognition.py --scale DIR`` (what face-only matching does to citizens) and
``kiosk calibrate --scale DIR`` (how low ``recognition.autolink_below`` must be to link nobody wrongly).
DIR holds ``person/1.jpg[, 2.jpg]`` and optionally ``east-asian-by-surname.txt`` (one person a line).

The protocol, decided once for both:

* a person with two usable photos is a *returning citizen*: photo 1 is enrolled, photo 2 is a later visit;
* people with one usable photo are split, separately among the East Asian subset and the others so that
  both get strangers: every ``stranger_every``-th by name is *held back* (never enrolled; their photo is a
  stranger's visit), the rest are enrolled as the citizens who do not come back during the run;
* the gallery grows: every returning citizen is enrolled at every size (the same visits are replayed each
  time), and the other enrolled people are added in a fixed shuffled order up to 1,000, 2,000 and all;
* *left-out* probes add strangers who resemble the enrolled: each enrolled person in turn is removed from the
  gallery and their photos are matched against everybody else (a citizen's first visit, as it were).

Every probe goes through the kiosk's own index and rule (``FaceIndex.match``: under the threshold and ahead of
every other citizen by the margin); an accepted match is what the kiosk *proposes* (the masked name it shows).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from kiosk.index import FaceIndex, Match
from kiosk.tickets import mask_name

EAST_ASIAN_LIST = "east-asian-by-surname.txt"
# LFW files some people under two names (its SOURCES.md names the first two pairs; the others are the same
# public figure under two names, found by this calibration). A match between them is not a false accept.
KNOWN_ALIASES = (("Wang_Nan", "Nan_Wang"), ("Choi_Sung-hong", "Sung_Hong_Choi"),
                 ("Prince_Felipe", "Felipe_De_Borbon"), ("Sepp_Blatter", "Joseph_Blatter"))
STRANGER_EVERY = 4
GALLERY_STEPS = (1000, 2000)
RETURNING, STRANGER, LEFT_OUT = "returning", "stranger", "left-out"


@dataclass(frozen=True)
class ScalePlan:
    """Who is enrolled (in which order), who returns, who is held back; all names are person folders."""
    returning: tuple[str, ...]      # enrolled with their first usable photo, visit again with the second
    others: tuple[str, ...]         # enrolled, never visit again (in the order the gallery grows)
    strangers: tuple[str, ...]      # never enrolled; visit with their one usable photo
    unusable: tuple[str, ...]       # no photo passed the kiosk's detection and quality gate
    east_asian: frozenset[str]
    aliases: frozenset[frozenset[str]] = frozenset()     # pairs of names for one person (dataset quirks)

    @property
    def enrolled_total(self) -> int:
        return len(self.returning) + len(self.others)

    def sizes(self, steps: Sequence[int] = GALLERY_STEPS) -> list[int]:
        """Gallery sizes to play: the steps that fit between the returning citizens and everybody, then all."""
        return [s for s in steps if len(self.returning) <= s < self.enrolled_total] + [self.enrolled_total]

    def gallery(self, size: int) -> list[str]:
        return list(self.returning) + list(self.others[: max(0, size - len(self.returning))])


@dataclass(frozen=True)
class Probe:
    """One visit: who is really there, what kind of visit, and the kiosk's match against the gallery."""
    person: str
    kind: str                       # RETURNING, STRANGER or LEFT_OUT
    match: Match
    alias: bool = False             # the proposal is this person under another name (neither right nor wrong)

    @property
    def proposed(self) -> str | None:
        """The citizen whose masked name the kiosk would show (a face-only proposal), or None."""
        return self.match.citizen_id

    @property
    def proposed_right(self) -> bool:
        return self.kind == RETURNING and self.proposed == self.person

    @property
    def proposed_wrong(self) -> bool:
        return self.proposed is not None and not self.proposed_right and not self.alias


def read_east_asian(scale_dir: Path) -> frozenset[str]:
    """The people listed in DIR's ``east-asian-by-surname.txt`` (empty when the file is absent)."""
    path = Path(scale_dir) / EAST_ASIAN_LIST
    if not path.is_file():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.startswith("#"))


def aliases_of(folders: Mapping[str, Sequence[Path]],
               known: Iterable[tuple[str, str]] = KNOWN_ALIASES) -> frozenset[frozenset[str]]:
    """Pairs of people who are one person: ``known`` pairs present, and folders sharing a byte-identical photo
    (LFW has the same picture under two names: a labelling error, not a face the encoder confused)."""
    pairs = {frozenset(pair) for pair in known if all(name in folders for name in pair)}
    owners: dict[str, set[str]] = {}
    for name, photos in folders.items():
        for photo in photos:
            owners.setdefault(hashlib.sha256(Path(photo).read_bytes()).hexdigest(), set()).add(name)
    for names in owners.values():
        pairs |= {frozenset((a, b)) for a in names for b in names if a < b}
    return frozenset(pairs)


def plan(encodings: Mapping[str, Sequence[np.ndarray | None]], east_asian: Iterable[str] = (), *,
         stranger_every: int = STRANGER_EVERY, seed: int = 0,
         aliases: Iterable[frozenset[str]] = ()) -> ScalePlan:
    """Split people into returning, other enrolled and held-back strangers (see the module docstring)."""
    if stranger_every < 2:
        raise ValueError("stranger_every must be at least 2 (someone must be enrolled)")
    east_asian = frozenset(east_asian) & frozenset(encodings)
    returning: list[str] = []
    singles: list[str] = []
    unusable: list[str] = []
    for name in sorted(encodings):
        usable = sum(e is not None for e in encodings[name])
        (returning if usable >= 2 else singles if usable == 1 else unusable).append(name)
    strangers: list[str] = []
    others: list[str] = []
    for group in ([n for n in singles if n in east_asian], [n for n in singles if n not in east_asian]):
        for i, name in enumerate(group):
            (strangers if i % stranger_every == stranger_every // 2 else others).append(name)
    order = np.random.default_rng(seed).permutation(len(others))
    others = [sorted(others)[i] for i in order]
    return ScalePlan(tuple(returning), tuple(others), tuple(sorted(strangers)), tuple(unusable), east_asian,
                     frozenset(aliases))


def usable(encodings: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    return [e for e in encodings if e is not None]


def replay(scale_plan: ScalePlan, encodings: Mapping[str, Sequence[np.ndarray | None]], size: int, *,
           threshold: float, margin: float, gallery: Sequence[str] | None = None,
           strangers: Sequence[str] | None = None, left_out: bool = True) -> list[Probe]:
    """Enrol ``size`` people (or exactly ``gallery``) in a FaceIndex and match every visit of the protocol.

    Returning citizens in the gallery visit with their second photo, held-back strangers (default: all of
    the plan's) with theirs; with ``left_out`` every enrolled person is also removed in turn and matched as a
    stranger with all their photos.
    """
    names = list(gallery) if gallery is not None else scale_plan.gallery(size)
    enrolled = set(names)

    def probe(person: str, kind: str, photo: np.ndarray) -> Probe:
        match = index.match(photo, threshold=threshold, margin=margin)
        alias = match.citizen_id is not None and frozenset((person, match.citizen_id)) in scale_plan.aliases
        return Probe(person, kind, match, alias)

    index = FaceIndex()
    for name in names:
        index.add(name, usable(encodings[name])[0])
    probes = []
    for name in scale_plan.returning:
        if name in enrolled:
            probes.append(probe(name, RETURNING, usable(encodings[name])[1]))
    for name in scale_plan.strangers if strangers is None else strangers:
        probes.append(probe(name, STRANGER, usable(encodings[name])[0]))
    if left_out and len(names) > 2:
        for name in names:
            template = index.templates_of(name)
            index.remove(name)
            for photo in usable(encodings[name]):
                probes.append(probe(name, LEFT_OUT, photo))
            index.add(name, template)
    return probes


def display_name(person: str) -> str:
    """The name a person folder stands for (``Kim_Dae-jung`` -> ``Kim Dae-jung``)."""
    return person.replace("_", " ")


def confirmed_by_mistake(probe: Probe) -> bool:
    """Would the visitor press "Đồng ý" for this wrong proposal? Only if it shows *their own* masked name.

    The model of the confirmation step: a citizen confirms the masked name they recognise as theirs and
    declines any other; a wrong citizen whose masked name happens to equal the visitor's own gets confirmed.
    """
    return (probe.proposed is not None and probe.proposed_wrong
            and mask_name(display_name(probe.proposed)) == mask_name(display_name(probe.person)))


@dataclass(frozen=True)
class Tally:
    """The counts one table row prints, for one gallery size and one subset of the probes."""
    returning: int
    proposed_right: int
    returning_wrong: int            # returning visits shown somebody else's name
    strangers: int                  # held-back strangers' visits
    strangers_shown: int
    left_out: int
    left_out_shown: int
    linked_wrong_confirmed: int     # wrong citizen linked after the visitor confirmed (the new rule)
    linked_wrong_unconfirmed: int   # wrong citizen linked if face alone links (today's rule)
    autolinked_right: int           # returning visits linked without confirmation below autolink_below
    autolinked_wrong: int
    missed: int                     # returning visits not proposed their own name
    missed_below_threshold: int     # ... nearest under the threshold (ambiguous, or a wrong name declined)
    missed_unsure: int              # ... in the unsure zone: asked for the card
    missed_offered_enrolment: int   # ... far enough to be offered a (duplicate) face-only enrolment
    strangers_unsure: int           # strangers (held back and left out) in the unsure zone: asked for a card


def tally(probes: Sequence[Probe], *, threshold: float, unsure_below: float | None,
          autolink_below: float | None = None) -> Tally:
    """Count one subset of probes under the confirmation rule, today's rule, the unsure zone and autolink."""
    unsure = unsure_below if unsure_below is not None else threshold
    returning = [p for p in probes if p.kind == RETURNING]
    strangers = [p for p in probes if p.kind == STRANGER]
    left_out = [p for p in probes if p.kind == LEFT_OUT]
    missed = [p for p in returning if not p.proposed_right]
    autolink = autolink_below if autolink_below is not None else -math.inf
    auto = [p for p in probes if p.proposed is not None and p.match.distance < autolink]
    return Tally(
        returning=len(returning),
        proposed_right=sum(p.proposed_right for p in returning),
        returning_wrong=sum(p.proposed_wrong for p in returning),
        strangers=len(strangers),
        strangers_shown=sum(p.proposed is not None for p in strangers),
        left_out=len(left_out),
        left_out_shown=sum(p.proposed is not None for p in left_out),
        linked_wrong_confirmed=sum(confirmed_by_mistake(p) or (p.proposed_wrong and p.match.distance < autolink)
                                   for p in probes),
        linked_wrong_unconfirmed=sum(p.proposed_wrong for p in probes),
        autolinked_right=sum(p.proposed_right for p in auto),
        autolinked_wrong=sum(p.proposed_wrong for p in auto),
        missed=len(missed),
        missed_below_threshold=sum(p.match.distance < threshold for p in missed),
        missed_unsure=sum(threshold <= p.match.distance < unsure for p in missed),
        missed_offered_enrolment=sum(p.match.distance >= unsure for p in missed),
        strangers_unsure=sum(threshold <= p.match.distance < unsure for p in strangers + left_out),
    )


def east_asian_gallery(scale_plan: ScalePlan) -> tuple[list[str], list[str]]:
    """(gallery, strangers) of the East Asian subset alone: an office where everybody is East Asian."""
    enrolled = [n for n in scale_plan.gallery(scale_plan.enrolled_total) if n in scale_plan.east_asian]
    return enrolled, [n for n in scale_plan.strangers if n in scale_plan.east_asian]


def east_asian_probes(probes: Sequence[Probe], east_asian: frozenset[str]) -> list[Probe]:
    return [p for p in probes if p.person in east_asian]


def sample(names: Sequence[str], limit: int | None) -> list[str]:
    """``limit`` people spread evenly over the sorted names (a quick run keeps a bit of every subset)."""
    names = sorted(names)
    if limit is None or limit >= len(names):
        return names
    if limit < 1:
        raise ValueError("--limit must be at least 1")
    return [names[int(i * len(names) / limit)] for i in range(limit)]


def encode_people(folders: Mapping[str, Sequence[Path]], cache) -> dict[str, list[np.ndarray | None]]:
    """Each person's photos encoded in order (None where the kiosk refuses a photo), through ``cache``."""
    try:
        return {name: [cache.get(path) for path in photos] for name, photos in folders.items()}
    finally:
        cache.save()
