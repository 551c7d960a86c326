"""Pictures: optical-flow colour coding and figures, video frame grids and GIFs; end-point error."""

from .curves import plot_curves, read_metrics
from .flow import FIGURE_MARGIN, average_endpoint_error, endpoint_error, flow_to_color, save_flow_png
from .flow_figure import flow_figure, save_flow_figure
from .grid import save_labelled_grid
from .video import save_comparison_gif, save_frame_grid

__all__ = [
    "FIGURE_MARGIN",
    "average_endpoint_error",
    "endpoint_error",
    "flow_figure",
    "flow_to_color",
    "plot_curves",
    "read_metrics",
    "save_comparison_gif",
    "save_flow_figure",
    "save_flow_png",
    "save_frame_grid",
    "save_labelled_grid",
]
