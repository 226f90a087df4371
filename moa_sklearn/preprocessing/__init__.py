"""Feature transformers of the lish-moa recipe, as scikit-learn transformers."""

from ._augment import (
    CategoricalEncoder,
    KMeansFeatures,
    PCAFeatures,
    RankGauss,
    RowStatistics,
    VarianceSelector,
    make_moa_features,
)

__all__ = [
    "CategoricalEncoder",
    "RankGauss",
    "PCAFeatures",
    "KMeansFeatures",
    "RowStatistics",
    "VarianceSelector",
    "make_moa_features",
]
