"""Visualisation and evaluation helpers: optical-flow colour coding, end-point error and figures."""

from .flow import (
    FIGURE_MARGIN,
    average_endpoint_error,
    endpoint_error,
    flow_figure,
    flow_to_color,
    save_flow_figure,
    save_flow_png,
)

from .video import save_comparison_gif, save_frame_grid

__all__ = [
    "save_comparison_gif",
    "save_frame_grid",
    "FIGURE_MARGIN",
    "average_endpoint_error",
    "endpoint_error",
    "flow_figure",
    "flow_to_color",
    "save_flow_figure",
    "save_flow_png",
]
