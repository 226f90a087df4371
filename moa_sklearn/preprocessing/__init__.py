"""Feature transformers of the lish-moa recipe, as scikit-learn transformers.

The public recipe turns the 875 raw columns of lish-moa (``cp_type``,
``cp_time``, ``cp_dose``, 772 gene columns ``g-*`` and 100 cell columns
``c-*``) into roughly 1,000-1,600 features:

1. :class:`CategoricalEncoder` one-hot encodes ``cp_type``, ``cp_time`` and
   ``cp_dose`` (in place), so that every later step sees numbers only;
2. :class:`RankGauss` maps each gene and cell column to a normal distribution
   by its ranks;
3. :class:`PCAFeatures` appends principal components (or factors) of the genes
   and of the cells;
4. :class:`VarianceSelector` drops the low-variance numeric columns, never the
   encoded ``cp_*`` columns;
5. :class:`KMeansFeatures` appends the KMeans cluster of each row (one-hot, or
   distances to the centres), per group;
6. :class:`RowStatistics` appends the sum, mean, std, skew and kurtosis of
   each row over the genes, the cells and both.

:func:`make_moa_features` returns these steps as one ``Pipeline``.

Column groups
-------------
:class:`RankGauss`, :class:`PCAFeatures`, :class:`KMeansFeatures` and
:class:`RowStatistics` select their columns with a ``column_groups``
parameter (not ``groups``, which in scikit-learn are the drug ids of the rows,
as in ``model__groups``): a dict ``{group name: selector}`` where a selector
is a regular expression searched in the column names (``"^g-"``), a list of
column names, or a list of column indices (the way to select columns of an
array). The group name appears in the new feature names: ``pca_g_0``,
``kmeans_c_3``, ``stat_gc_mean``; the fitted ``column_groups_`` holds the
column indices of each group.

``column_groups="auto"`` (the default) means the lish-moa groups ``{"g": "^g-",
"c": "^c-"}``, keeping those that match a column. When ``X`` has no column
names (an array) or no column matches, all columns form one group named
``"all"``. An explicit selector that matches no column raises an error naming
it.

All transformers fit on the data given to ``fit`` only (no transductive
fitting on train + test): inside cross-validation folds nothing leaks.
"""

from ._augment import KMeansFeatures, PCAFeatures, RowStatistics
from ._encoder import CategoricalEncoder
from ._rankgauss import RankGauss
from ._recipe import make_moa_features
from ._selection import VarianceSelector

__all__ = [
    "CategoricalEncoder",
    "RankGauss",
    "PCAFeatures",
    "KMeansFeatures",
    "RowStatistics",
    "VarianceSelector",
    "make_moa_features",
]
