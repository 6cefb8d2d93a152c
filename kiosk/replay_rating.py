"""``kiosk replay``'s rating lines (issue 13): ``{"image": ..., "rating": "good" | "ok" | "bad"}`` presses that
rating button instead of a service; its output line says ``"rating"``, ``"linked"`` (to the citizen's visit of
the day) and ``"counted"`` (false: that visit was rated before, nothing changed)."""
from __future__ import annotations

from typing import Any

from kiosk.loop import FakeClock
from kiosk.machine_events import Phase, Rated
from kiosk.states_rating import RATING_BUTTONS, THANKS_SECONDS
from kiosk.visit import ButtonPressed

BUTTON_OF = {rating: name for name, rating in RATING_BUTTONS.items()}


def rating_choice(entry: dict, where: str) -> str | None:
    """A rating line's rating (then no category is needed: it takes no ticket); a ValueError names the line."""
    rating = entry.get("rating")
    if rating is not None and rating not in BUTTON_OF:
        raise ValueError(f"{where}: rating must be one of {', '.join(BUTTON_OF)}")
    return rating


def rating_visit(loop: Any, camera: Any, clock: FakeClock, rating: str) -> dict[str, Any]:
    """Press the rating button with whoever is in view, then let the thank-you screen go back to idle."""
    loop.events.put(ButtonPressed(BUTTON_OF[rating]))
    rated = [event for event in loop.step() if isinstance(event, Rated)]
    if not rated:
        raise RuntimeError(f"the rating was not taken (ratings off in this config, or the kiosk was in "
                           f"{loop.machine.phase})")
    camera.show(None)
    for _ in range(4):
        clock.advance(THANKS_SECONDS)
        loop.step()
        if loop.machine.phase == Phase.IDLE:
            break
    return {"ticket": None, "category": None, "citizen": None, "recognized": False, "enrolled": False,
            "printed": None, "identified_by": None, "proposed": None, "card": None, "privacy": None,
            "rating": rated[-1].rating, "linked": rated[-1].linked, "counted": rated[-1].new}
