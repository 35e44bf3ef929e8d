"""One colour per reduction method, the same in every picture vidslim draws.

    method_colour("tempme")            # always TempMe's purple, whichever plot and whatever else is in it
    method_colour("rlt (videomae)")    # a series named "METHOD (anything)" takes METHOD's colour

A plot that coloured its series in order of appearance would paint RLT red in one picture and green in the next,
so a reader comparing the tune Pareto picture with the demo's plot would match the wrong points. Known methods and
the combinations `vidslim bench --method all` builds have a fixed colour in `METHOD_COLOURS`; any other name (a
method registered later, a combination not listed) gets one of `EXTRA` chosen by a checksum of its name, which is
the same in every process (Python's `hash` of a string is not). Every colour is dark enough to read as text on
white and differs from the ideal curve's blue and the grey of unreliable points.
"""

from __future__ import annotations

import zlib

RGB = tuple[int, int, int]

#: the colour of each known method and combination (a name not here: `EXTRA`)
METHOD_COLOURS: dict[str, RGB] = {
    "dense": (60, 60, 60),
    "rlt": (214, 39, 40),
    "rlt_budget": (160, 20, 60),
    "tome": (44, 160, 44),
    "tempme": (148, 103, 189),
    "tokenprune": (255, 127, 14),
    "svitt": (140, 86, 75),
    "random": (188, 189, 34),
    "rlt+tempme": (227, 119, 194),
    "rlt+tome": (23, 190, 207),
    "rlt+tokenprune": (31, 31, 120),
    "rlt+svitt": (120, 60, 0),
    "tempme+svitt": (90, 40, 130),
    "tome+svitt": (0, 110, 60),
    "tokenprune+svitt": (200, 90, 0),
    "rlt_budget+tome": (0, 140, 140),
    "rlt_budget+tokenprune": (100, 100, 0),
    "rlt_budget+svitt": (170, 70, 120),
}
#: colours for names not in `METHOD_COLOURS`, picked by a checksum of the name
EXTRA: tuple[RGB, ...] = ((0, 90, 160), (180, 0, 180), (90, 130, 0), (200, 60, 100), (0, 120, 100), (130, 80, 40),
                          (80, 0, 160), (210, 120, 0))


def method_colour(name: str) -> RGB:
    """The colour of method `name` ("rlt+tempme"; "rlt (clip)" takes "rlt"'s), the same in every plot."""
    method = name.split(" (", 1)[0].strip()
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return EXTRA[zlib.crc32(method.encode()) % len(EXTRA)]


__all__ = ["EXTRA", "METHOD_COLOURS", "method_colour"]
