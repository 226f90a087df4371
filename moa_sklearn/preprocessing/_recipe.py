"""The lish-moa feature recipe as one Pipeline."""

from sklearn.pipeline import Pipeline

from ._augment import _STATISTICS, KMeansFeatures, PCAFeatures, RowStatistics
from ._encoder import CategoricalEncoder
from ._rankgauss import RankGauss
from ._selection import VarianceSelector


def make_moa_features(
    *,
    column_groups="auto",
    n_quantiles=100,
    n_components="auto",
    decomposition="pca",
    variance_threshold=0.8,
    n_clusters="auto",
    cluster_output="onehot",
    stats=_STATISTICS,
    categorical="auto",
    drop=None,
    keep="auto",
    random_state=None,
):
    """The lish-moa public feature recipe as one scikit-learn ``Pipeline``.

    The steps, by name::

        encode    CategoricalEncoder    cp_type/cp_time/cp_dose -> 0/1 columns
        rankgauss RankGauss             g- and c- columns -> normal by rank
        pca       PCAFeatures           + pca_g_* (600), pca_c_* (50)
        variance  VarianceSelector      drop variance <= 0.8, keep cp_* columns
        kmeans    KMeansFeatures        + kmeans_g_* (22), kmeans_c_* (4)
        stats     RowStatistics         + stat_{g,c,gc}_{sum,mean,std,skew,kurtosis}

    The categorical columns are encoded first so that every later step works
    on numbers; the variance selection comes before the KMeans and row
    statistics features, as in the public notebooks, so that those (0/1 and
    small-variance) features are not dropped. On the lish-moa training data
    the 875 input columns become roughly 1,000-1,600. Control rows are best
    kept away from these steps: :func:`~moa_sklearn.recipes.make_moa_pipeline`
    puts them inside a :class:`~moa_sklearn.ensemble.ControlVehicleClassifier`,
    which recognises the control rows on the raw ``cp_type``.

    The pipeline's output is a pandas DataFrame (``set_output(transform=
    "pandas")``), which carries the column names from step to step: the
    steps find their groups by name. Each step's parameters can be tuned, e.g.
    ``GridSearchCV(..., {"features__pca__n_components": [{"g": 300, "c": 30},
    {"g": 600, "c": 50}], "features__kmeans__n_clusters": [8, 22]})``, and any
    step can be switched off with ``set_params(kmeans="passthrough")``.

    Everything is fitted on the data given to ``fit`` only (no transductive
    train + test fitting), so the pipeline is safe inside CV folds.

    Parameters
    ----------
    column_groups : 'auto' or dict, default='auto'
        Column groups of the RankGauss, PCA, KMeans and row-statistics steps
        (see :class:`PCAFeatures`). ``'auto'``: ``g`` (``^g-``), ``c``
        (``^c-``), and for row statistics also ``gc``. The input must be a
        DataFrame with column names.
    n_quantiles : int, default=100
        Quantiles of the RankGauss maps.
    n_components : 'auto', int or dict, default='auto'
        Components per group (``'auto'``: 600 genes, 50 cells).
    decomposition : {'pca', 'factor_analysis'}, default='pca'
        Method of the ``pca`` step.
    variance_threshold : float, default=0.8
        Threshold of the ``variance`` step.
    n_clusters : 'auto', int or dict, default='auto'
        Clusters per group (``'auto'``: 22 genes, 4 cells).
    cluster_output : {'onehot', 'distance'}, default='onehot'
        Output of the ``kmeans`` step.
    stats : tuple of str, default=('sum', 'mean', 'std', 'skew', 'kurtosis')
        Statistics of the ``stats`` step.
    categorical : 'auto', str or list, default='auto'
        Columns of the ``encode`` step, in the raw input (``'auto'``: names
        starting with ``cp_``).
    drop : {None, 'if_binary'}, default=None
        ``drop`` of the ``encode`` step.
    keep : 'auto', str, list or None, default='auto'
        Columns the ``variance`` step never drops, named as in its input,
        i.e. after encoding (``'auto'``: names starting with ``cp_``, which
        covers the encoded ``cp_type_*``, ``cp_time_*``, ``cp_dose_*``).
    random_state : int, RandomState instance or None, default=None
        Seed of every random step (RankGauss subsampling, PCA, KMeans).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted, with pandas output.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import make_moa_features
    >>> rng = np.random.RandomState(0)
    >>> n = 120
    >>> X = pd.concat([
    ...     pd.DataFrame({"cp_type": rng.choice(["trt_cp", "ctl_vehicle"], n),
    ...                   "cp_time": rng.choice([24, 48, 72], n),
    ...                   "cp_dose": rng.choice(["D1", "D2"], n)}),
    ...     pd.DataFrame(rng.normal(size=(n, 20)),
    ...                  columns=[f"g-{i}" for i in range(20)]),
    ...     pd.DataFrame(rng.normal(size=(n, 5)),
    ...                  columns=[f"c-{i}" for i in range(5)])], axis=1)
    >>> features = make_moa_features(n_components={"g": 4, "c": 2},
    ...                              n_clusters={"g": 3, "c": 2}, random_state=0)
    >>> Xt = features.fit_transform(X)
    >>> [c for c in Xt.columns if c.startswith("cp_type")]
    ['cp_type_ctl_vehicle', 'cp_type_trt_cp']
    >>> Xt.shape[1] > X.shape[1]
    True
    """
    pipeline = Pipeline(
        [
            ("encode", CategoricalEncoder(columns=categorical, drop=drop)),
            (
                "rankgauss",
                RankGauss(
                    column_groups=column_groups,
                    n_quantiles=n_quantiles,
                    random_state=random_state,
                ),
            ),
            (
                "pca",
                PCAFeatures(
                    column_groups=column_groups,
                    n_components=n_components,
                    method=decomposition,
                    random_state=random_state,
                ),
            ),
            ("variance", VarianceSelector(threshold=variance_threshold, keep=keep)),
            (
                "kmeans",
                KMeansFeatures(
                    column_groups=column_groups,
                    n_clusters=n_clusters,
                    output=cluster_output,
                    random_state=random_state,
                ),
            ),
            ("stats", RowStatistics(column_groups=column_groups, stats=stats)),
        ]
    )
    return pipeline.set_output(transform="pandas")
