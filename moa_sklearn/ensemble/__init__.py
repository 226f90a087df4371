"""Blends of multilabel classifiers and the handling of control rows."""

from ._blend import ControlVehicleClassifier, SeedAveragingClassifier, StackingBlend

__all__ = ["StackingBlend", "ControlVehicleClassifier", "SeedAveragingClassifier"]
