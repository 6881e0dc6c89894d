"""The Alignment Data Map as a terminal scatter: variance across, mean up, one colour a region."""

from __future__ import annotations

import time
from typing import Any

from textual.app import RenderResult
from textual_plotext import PlotextPlot

# a colour and a distinct marker per region, so the regions still read without colour;
# no legend (it hides the top-left corner, where HighAvg lives): the region table is the key
REGION_STYLE: dict[str, tuple[str, str]] = {
    "HighAvg": ("green", "dot"),
    "LowAvg": ("blue", "+"),
    "HighVar": ("red", "x"),
}


class MapPlot(PlotextPlot):
    """A scatter of (variance, mean) per sample with the region boundaries."""

    painted_at = 0.0
    """When a map was last drawn (perf_counter), for benchmarks; 0 before the first."""

    _has_map = False

    def render(self) -> RenderResult:
        result = super().render()
        if self._has_map:
            self.painted_at = time.perf_counter()
        return result

    def show_map(self, points: list[tuple[float, float, str]], thresholds: dict[str, Any]) -> None:
        """Plot these points and the thresholds, replacing what was shown."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for region, (color, marker) in REGION_STYLE.items():
            xs = [p[0] for p in points if p[2] == region]
            ys = [p[1] for p in points if p[2] == region]
            if xs:
                plt.scatter(xs, ys, color=color, marker=marker)
        var_cut, mean_cut = thresholds.get("variance"), thresholds.get("mean")
        if isinstance(var_cut, float | int):
            plt.vline(float(var_cut), "red")
        if isinstance(mean_cut, float | int) and isinstance(var_cut, float | int):
            # the mean cut applies only left of the variance cut
            plt.plot([0.0, float(var_cut)], [float(mean_cut)] * 2, color="green", marker="braille")
        plt.xlabel("variability (σ²)")
        plt.ylabel("quality (mean)")
        self._has_map = True
        self.refresh()
