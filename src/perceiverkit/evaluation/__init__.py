"""Evaluation on real data."""

from .middlebury import FlowEvaluation, evaluate_flow_on_motorcycle, load_motorcycle

__all__ = ["FlowEvaluation", "evaluate_flow_on_motorcycle", "load_motorcycle"]
