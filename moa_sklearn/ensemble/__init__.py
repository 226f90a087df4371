"""Blends of multilabel classifiers and the handling of control rows.

- :class:`StackingBlend`: out-of-fold predictions of several classifiers under
  a drug-grouped CV, blend weights chosen on them to minimise the competition
  metric, base classifiers refitted on all rows.
- :class:`ControlVehicleClassifier`: fits its classifier on treated rows only
  and predicts the floor probability for the control (``ctl_vehicle``) rows.
- :class:`SeedAveragingClassifier`: the mean probabilities of one classifier
  fitted with several seeds (any classifier, e.g. a ``Pipeline``).

scikit-learn's ``StackingClassifier`` cannot do the blend's job: with
multilabel targets its ``predict_proba`` returns P(label = 0), its default
final estimator rejects a 2-D ``y``, and ``groups`` never reach its inner CV.
"""

from ._blend import StackingBlend
from ._control import ControlVehicleClassifier
from ._seed import SeedAveragingClassifier

__all__ = ["StackingBlend", "ControlVehicleClassifier", "SeedAveragingClassifier"]
