"""One colour and marker per series, never repeated, and a legend outside the data: what every figure of analysis/
shares so that a series reads the same wherever it is drawn."""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "8")
# Ordered series (a training eps, an alpha) read best along a sequential map; its pale end would vanish on white.
SEQUENTIAL_END = 0.85


def distinct_styles(n: int, sequential: str | None = None) -> list[tuple[tuple[float, ...], str]]:
    """``n`` (colour, marker) pairs with no colour repeated: the qualitative tab10 up to 10 series, tab20 up to 20,
    else evenly spaced along turbo; with ``sequential`` (a colormap name, e.g. ``"viridis"``) evenly spaced along it,
    for series that have an order. Markers cycle through :data:`MARKERS` (12 before one repeats)."""
    if sequential is not None:
        cmap = colormaps[sequential]
        colours = [cmap(SEQUENTIAL_END * i / max(n - 1, 1)) for i in range(n)]
    elif n <= 20:
        colours = list(colormaps["tab10" if n <= 10 else "tab20"].colors[:n])
    else:
        colours = [colormaps["turbo"](i / (n - 1)) for i in range(n)]
    return [(tuple(colour), MARKERS[i % len(MARKERS)]) for i, colour in enumerate(colours)]


def legend_outside(target: Axes | Figure, **options) -> None:
    """The legend to the right of the axes, or of a figure's panels (each label once, however many panels show
    it), clear of the data."""
    if isinstance(target, Figure):
        entries = {label: handle for ax in target.axes for handle, label in zip(*ax.get_legend_handles_labels())}
        target.legend(entries.values(), entries.keys(), loc="outside right upper", fontsize=8, **options)
    else:
        target.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize=8, **options)
