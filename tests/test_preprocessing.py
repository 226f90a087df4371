"""Tests of moa_sklearn.preprocessing (small data: a few hundred rows)."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats as sp_stats
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
)

from moa_sklearn.metrics import neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.preprocessing import (
    CategoricalEncoder,
    KMeansFeatures,
    PCAFeatures,
    RankGauss,
    RowStatistics,
    VarianceSelector,
    make_moa_features,
)

TRANSFORMERS = [
    CategoricalEncoder(),
    RankGauss(random_state=0),
    PCAFeatures(random_state=0),
    KMeansFeatures(random_state=0),
    RowStatistics(),
    # the checks' data have small variances: the default threshold (0.8, for
    # RankGauss-scaled features) would keep no column and warn so
    VarianceSelector(threshold=0.01),
]
# the transformers that take numeric input (after CategoricalEncoder)
NUMERIC = TRANSFORMERS[1:]


def _ids(estimators):
    return [type(e).__name__ for e in estimators]


def _raw_frame(n=200, n_genes=30, n_cells=10, seed=0):
    """A small frame with the raw lish-moa layout (strings in cp_type/cp_dose)."""
    rng = np.random.RandomState(seed)
    latent = rng.normal(size=(n, 3))
    genes = latent @ rng.normal(size=(3, n_genes)) + rng.normal(size=(n, n_genes))
    cells = latent[:, :1] @ rng.normal(size=(1, n_cells)) * 2
    cells = np.clip(cells + rng.normal(size=(n, n_cells)), -10, None)
    head = pd.DataFrame(
        {
            "cp_type": rng.choice(["trt_cp", "ctl_vehicle"], n, p=[0.9, 0.1]),
            "cp_time": rng.choice([24, 48, 72], n),
            "cp_dose": rng.choice(["D1", "D2"], n),
        }
    )
    g = pd.DataFrame(genes, columns=[f"g-{i}" for i in range(n_genes)])
    c = pd.DataFrame(cells, columns=[f"c-{i}" for i in range(n_cells)])
    X = pd.concat([head, g, c], axis=1)
    X.index = [f"id_{i:05d}" for i in range(n)]
    return X


def _numeric_frame(n=200, n_genes=30, n_cells=10, seed=0):
    """The raw frame with cp_* encoded (what the numeric transformers take)."""
    return (
        CategoricalEncoder()
        .set_output(transform="pandas")
        .fit_transform(_raw_frame(n, n_genes, n_cells, seed))
    )


def _small_recipe(**kw):
    params = dict(
        n_components={"g": 5, "c": 2}, n_clusters={"g": 4, "c": 2}, random_state=0
    )
    params.update(kw)
    return make_moa_features(**params)


# --------------------------------------------------------------------------
# scikit-learn checks not run by parametrize_with_checks
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=_ids(TRANSFORMERS))
def test_sklearn_feature_names_and_set_output_checks(transformer, check):
    if check in (
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ):
        # these checks fit on a frame and transform an array, and the reverse:
        # a transformer must say that the feature names do not match
        with pytest.warns(UserWarning, match="feature names") as record:
            check(type(transformer).__name__, transformer)
        messages = {str(w.message).split(",")[0] for w in record}
        assert messages == {
            "X has feature names",
            "X does not have valid feature names",
        }
    else:
        check(type(transformer).__name__, transformer)


# --------------------------------------------------------------------------
# Column groups
# --------------------------------------------------------------------------


def test_auto_column_groups_use_gene_and_cell_patterns_on_frames():
    X = _numeric_frame()
    pca = PCAFeatures(n_components=3, random_state=0).fit(X)
    assert list(pca.column_groups_) == ["g", "c"]
    assert_array_equal(
        X.columns[pca.column_groups_["g"]], [f"g-{i}" for i in range(30)]
    )
    assert_array_equal(
        X.columns[pca.column_groups_["c"]], [f"c-{i}" for i in range(10)]
    )
    new = pca.get_feature_names_out()[X.shape[1] :].tolist()
    assert new == ["pca_g_0", "pca_g_1", "pca_g_2", "pca_c_0", "pca_c_1", "pca_c_2"]


def test_auto_column_groups_fall_back_to_all_columns_on_arrays():
    X = _numeric_frame().to_numpy()
    pca = PCAFeatures(n_components=2, random_state=0).fit(X)
    assert list(pca.column_groups_) == ["all"]
    assert_array_equal(pca.column_groups_["all"], np.arange(X.shape[1]))
    names = pca.get_feature_names_out()
    assert names[0] == "x0" and names[-2:].tolist() == ["pca_all_0", "pca_all_1"]
    stats = RowStatistics(stats=("mean",)).fit(X)
    assert stats.get_feature_names_out()[-1] == "stat_all_mean"


def test_explicit_index_column_groups_on_arrays():
    X = _numeric_frame()
    genes = [X.columns.get_loc(f"g-{i}") for i in range(30)]
    cells = [X.columns.get_loc(f"c-{i}") for i in range(10)]
    column_groups = {"genes": genes, "cells": cells}
    by_index = PCAFeatures(column_groups=column_groups, n_components=2, random_state=0)
    Xt_array = by_index.fit_transform(X.to_numpy())
    assert by_index.get_feature_names_out()[-4:].tolist() == [
        "pca_genes_0",
        "pca_genes_1",
        "pca_cells_0",
        "pca_cells_1",
    ]
    by_name = PCAFeatures(n_components=2, random_state=0).fit(X)
    assert_allclose(Xt_array, by_name.transform(X))


def test_explicit_name_list_and_pattern_groups():
    X = _numeric_frame()
    column_groups = {"few": ["g-0", "g-5", "c-1"], "cells": r"^c-[0-4]$"}
    rs = RowStatistics(column_groups=column_groups, stats=("sum",)).fit(X)
    assert_array_equal(X.columns[rs.column_groups_["few"]], ["g-0", "g-5", "c-1"])
    assert rs.column_groups_["cells"].size == 5
    out = rs.transform(X)
    assert_allclose(out[:, -2], X[["g-0", "g-5", "c-1"]].sum(axis=1))
    assert_allclose(out[:, -1], X[[f"c-{i}" for i in range(5)]].sum(axis=1))


@pytest.mark.parametrize(
    "transformer",
    [
        RankGauss(column_groups={"genes": "^gene-"}),
        PCAFeatures(column_groups={"genes": "^gene-"}),
        KMeansFeatures(column_groups={"genes": "^gene-"}),
        RowStatistics(column_groups={"genes": "^gene-"}),
    ],
    ids=_ids(NUMERIC[:4]),
)
def test_pattern_matching_no_column_is_an_error_naming_it(transformer):
    with pytest.raises(
        ValueError, match=r"column_groups\['genes'\].*'\^gene-'.*matches no"
    ):
        transformer.fit(_numeric_frame())


def test_explicit_keep_or_columns_pattern_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"keep: the pattern '\^cp_x' matches no"):
        VarianceSelector(keep="^cp_x").fit(_numeric_frame())
    with pytest.raises(ValueError, match=r"columns: the pattern '\^cat_' matches no"):
        CategoricalEncoder(columns="^cat_").fit(_raw_frame())


@pytest.mark.parametrize(
    "column_groups, message",
    [
        ({"g": "^g-"}, "no column names"),
        ({"g": [0, 500]}, r"indices \[500\] are out of range"),
        ({"g": ["g-0"]}, "no column names"),
        ({"g": []}, r"non-empty list .* Got \{'g': \[\]\} instead"),
        ({"g": [0, 0]}, "more than once"),
        ({}, r"must be .* or a non-empty dict .* Got \{\} instead"),
    ],
)
def test_invalid_column_groups_on_arrays(column_groups, message):
    X = _numeric_frame().to_numpy()
    with pytest.raises(ValueError, match=message):
        PCAFeatures(column_groups=column_groups, n_components=2).fit(X)


@pytest.mark.parametrize(
    "column_groups",
    ["^g-", {"g": ["g-0", 3]}, {"g": 5}, {"": "^g-"}, {"g": ("g-0", True)}],
    ids=["pattern", "mixed-list", "int", "empty-name", "bool-index"],
)
def test_column_groups_type_errors(column_groups):
    """A column_groups that is not 'auto' or a dict {name: selector} is
    rejected before fitting, naming the parameter and what it must be."""
    message = (
        r"The 'column_groups' parameter of PCAFeatures must be a str among "
        r"\{'auto'\} or a non-empty dict \{group name: column-name pattern, or "
        r"non-empty list of column names or of column indices\}\. Got"
    )
    with pytest.raises(InvalidParameterError, match=message):
        PCAFeatures(column_groups=column_groups).fit(_numeric_frame())


@pytest.mark.parametrize(
    "transformer, param",
    [
        (CategoricalEncoder(columns=5), "columns"),
        (CategoricalEncoder(columns=[0, "cp_type"]), "columns"),
        (VarianceSelector(keep={"cp_type"}), "keep"),
        (VarianceSelector(keep=[]), "keep"),
    ],
    ids=["int", "mixed", "set", "empty"],
)
def test_columns_and_keep_type_errors(transformer, param):
    X = _raw_frame() if param == "columns" else _numeric_frame()
    message = (
        rf"The '{param}' parameter of {type(transformer).__name__} must be a "
        r"column-name pattern \(str\) or a non-empty list of column names or of "
        r"column indices.*(None)?.* Got"
    )
    with pytest.raises(InvalidParameterError, match=message):
        transformer.fit(X)


def test_missing_columns_in_column_groups_are_named():
    with pytest.raises(ValueError, match=r"columns \['g-999'\] are not in X"):
        RowStatistics(column_groups={"g": ["g-0", "g-999"]}).fit(_numeric_frame())


def test_column_groups_is_not_named_groups():
    """``groups`` are the drug ids of the rows in scikit-learn (``model__groups``);
    the transformers' column groups have their own name."""
    params = make_moa_features().get_params()
    for step in ("rankgauss", "pca", "kmeans", "stats"):
        assert params[f"{step}__column_groups"] == "auto"
    assert not [key for key in params if key.split("__")[-1] == "groups"]
    features = make_moa_features(column_groups={"g": "^g-"})
    assert features.named_steps["pca"].column_groups == {"g": "^g-"}
    with pytest.raises(TypeError, match="groups"):
        PCAFeatures(groups={"g": "^g-"})


# --------------------------------------------------------------------------
# Transform-time validation: column order, missing columns, NaN / inf
# --------------------------------------------------------------------------


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=_ids(TRANSFORMERS))
def test_reordered_or_missing_columns_raise(transformer):
    X = (
        _raw_frame()
        if isinstance(transformer, CategoricalEncoder)
        else _numeric_frame()
    )
    est = clone(transformer).fit(X)
    with pytest.raises(ValueError, match="same order as they were in fit"):
        est.transform(X[list(X.columns[::-1])])
    with pytest.raises(ValueError, match="missing"):
        est.transform(X.drop(columns=["g-3"]))


def test_recipe_rejects_reordered_columns():
    X = _raw_frame()
    features = _small_recipe().fit(X)
    with pytest.raises(ValueError, match="same order as they were in fit"):
        features.transform(X[list(X.columns[::-1])])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=_ids(TRANSFORMERS))
def test_nan_and_inf_raise_at_fit_and_transform(transformer, bad):
    raw = isinstance(transformer, CategoricalEncoder)
    X = _raw_frame() if raw else _numeric_frame()
    X_bad = X.copy()
    X_bad.loc[X_bad.index[3], "g-2"] = bad
    with pytest.raises(ValueError, match=r"NaN or infinity in column\(s\) \['g-2'\]"):
        clone(transformer).fit(X_bad)
    est = clone(transformer).fit(X)
    with pytest.raises(ValueError, match=r"NaN or infinity in column\(s\) \['g-2'\]"):
        est.transform(X_bad)


def test_missing_category_raises():
    X = _raw_frame()
    X.loc[X.index[0], "cp_dose"] = None
    with pytest.raises(ValueError, match="column 'cp_dose' contains missing values"):
        CategoricalEncoder().fit(X)


def test_numeric_transformers_reject_string_columns_clearly():
    with pytest.raises(ValueError, match=r"\['cp_type', 'cp_dose'\] are not numeric"):
        RankGauss().fit(_raw_frame())


def test_categorical_encoder_rejects_unencoded_string_column():
    X = _raw_frame()
    X.insert(0, "sig_id", X.index)
    with pytest.raises(ValueError, match=r"\['sig_id'\] are not"):
        CategoricalEncoder().fit(X)


# --------------------------------------------------------------------------
# Each transformer's output
# --------------------------------------------------------------------------


def test_categorical_encoder_output_and_names():
    X = _raw_frame()
    enc = CategoricalEncoder().set_output(transform="pandas")
    Xt = enc.fit_transform(X)
    head = [
        "cp_type_ctl_vehicle",
        "cp_type_trt_cp",
        "cp_time_24",
        "cp_time_48",
        "cp_time_72",
        "cp_dose_D1",
        "cp_dose_D2",
    ]
    assert Xt.columns[:7].tolist() == head
    assert Xt.columns[7:].tolist() == X.columns[3:].tolist()
    assert_array_equal(Xt["cp_type_ctl_vehicle"], X["cp_type"] == "ctl_vehicle")
    assert_array_equal(Xt["cp_time_48"], X["cp_time"] == 48)
    assert_allclose(Xt.iloc[:, 7:], X.iloc[:, 3:])
    assert_array_equal(Xt.iloc[:, :7].sum(axis=1), 3)
    assert Xt.index.equals(X.index)

    ind = CategoricalEncoder(drop="if_binary").fit(X)
    assert ind.get_feature_names_out()[:5].tolist() == [
        "cp_type_trt_cp",
        "cp_time_24",
        "cp_time_48",
        "cp_time_72",
        "cp_dose_D2",
    ]


def test_categorical_encoder_unseen_category_error():
    X = _raw_frame()
    enc = CategoricalEncoder().fit(X)
    X_new = X.copy()
    X_new.loc[X_new.index[1], "cp_dose"] = "D3"
    with pytest.raises(ValueError, match=r"'cp_dose' has categories \['D3'\] that"):
        enc.transform(X_new)
    X_new = X.copy()
    X_new.loc[X_new.index[1], "cp_time"] = 96
    with pytest.raises(ValueError, match=r"'cp_time' has categories \[96\]"):
        enc.transform(X_new)


def test_categorical_encoder_on_object_array_with_indices():
    X = _raw_frame(n=50)
    enc = CategoricalEncoder(columns=[0, 1, 2])
    Xt = enc.fit_transform(X.to_numpy())  # an object array
    assert Xt.dtype == np.float64 and Xt.shape == (50, 7 + 40)
    assert enc.get_feature_names_out()[:2].tolist() == ["x0_ctl_vehicle", "x0_trt_cp"]
    assert_allclose(Xt, CategoricalEncoder().fit_transform(X))
    # numeric arrays with the default: nothing to encode, values passed through
    Xn = np.arange(12.0).reshape(4, 3)
    assert_allclose(CategoricalEncoder().fit_transform(Xn), Xn)


def test_rankgauss_maps_to_normal_by_rank_and_passes_others():
    X = _numeric_frame(n=400)
    X["g-0"] = np.random.RandomState(1).exponential(size=len(X))  # skewed column
    X_before = X.copy()
    rg = RankGauss(random_state=0).set_output(transform="pandas")
    Xt = rg.fit_transform(X)
    assert_array_equal(Xt.columns, X.columns)
    pd.testing.assert_frame_equal(X, X_before)  # input untouched
    genes = [c for c in X.columns if c.startswith("g-")]  # no ties (cells have a floor)
    assert_allclose(Xt[genes].mean(), 0, atol=0.05)
    assert_allclose(Xt[genes].std(), 1, atol=0.1)
    assert not np.allclose(Xt[genes], X[genes])
    assert abs(sp_stats.skew(Xt["g-0"])) < 0.1  # the skew is gone
    for col in ["g-0", "c-3"]:
        rho = sp_stats.spearmanr(X[col], Xt[col]).statistic
        assert rho > 0.999
    cp = [c for c in X.columns if c.startswith("cp_")]
    pd.testing.assert_frame_equal(Xt[cp], X[cp])
    assert rg.quantile_transformer_.n_quantiles_ == 100


def test_rankgauss_transform_is_quantile_transformers_to_the_bit():
    """The vectorised normal scores are scikit-learn's, beyond the training
    range, on ties and on a constant column too."""
    rng = np.random.RandomState(0)
    X = rng.exponential(size=(300, 6))
    X[:, 1] = np.round(X[:, 1])  # ties
    X[:, 2] = 1.0  # constant
    rg = RankGauss(n_quantiles=50, random_state=0).fit(X)
    T = rng.exponential(size=(80, 6)) * 2
    T[0], T[1] = X.min(axis=0) - 1, X.max(axis=0) + 1  # below / above the range
    T[2] = X[0]  # a training row
    T[:, 1] = np.round(T[:, 1])
    expected = rg.quantile_transformer_.transform(T)
    assert_array_equal(rg.transform(T), expected)
    assert np.isfinite(expected).all()


def test_rankgauss_threads_over_the_columns_to_the_same_bits(monkeypatch):
    """With many columns the interpolation is spread over threads: the
    numbers stay scikit-learn's."""
    import sklearn.utils._openmp_helpers as helpers

    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 300))
    X[:, ::7] = np.round(X[:, ::7])  # ties
    rg = RankGauss(n_quantiles=100, random_state=0).fit(X)
    T = rng.normal(size=(300, 300)) * 1.5
    expected = rg.quantile_transformer_.transform(T)
    calls = []
    monkeypatch.setattr(
        helpers, "_openmp_effective_n_threads", lambda: calls.append(1) or 4
    )
    out = rg.transform(T)
    assert calls  # the threaded path was taken
    assert_array_equal(out, expected)


def test_rankgauss_does_not_modify_input_array():
    X = _numeric_frame().to_numpy()
    X_copy = X.copy()
    RankGauss().fit(X).transform(X)
    assert_array_equal(X, X_copy)


def test_pca_features_match_sklearn_pca_per_group():
    X = _numeric_frame()
    pca = PCAFeatures(n_components={"g": 4, "c": 3}, random_state=0).fit(X)
    Xt = pca.transform(X)
    assert Xt.shape == (len(X), X.shape[1] + 7)
    assert_allclose(Xt[:, : X.shape[1]], X)
    genes = X.filter(regex="^g-").to_numpy()
    ref = PCA(n_components=4, random_state=0).fit(genes).transform(genes)
    assert_allclose(Xt[:, X.shape[1] : X.shape[1] + 4], ref, atol=1e-8)


def test_pca_features_cap_and_factor_analysis():
    X = _numeric_frame(n=20)  # 20 rows, 30 genes, 10 cells
    pca = PCAFeatures(random_state=0).fit(X)  # auto: 600 and 50
    assert pca.n_components_ == {"g": 20, "c": 10}
    fa = PCAFeatures(n_components=2, method="factor_analysis", random_state=0)
    names = fa.fit(X).get_feature_names_out()[-4:].tolist()
    assert names == ["fa_g_0", "fa_g_1", "fa_c_0", "fa_c_1"]
    assert np.isfinite(fa.transform(X)).all()


@pytest.mark.parametrize(
    "n_components, message",
    [
        ({"g": 3}, r"missing \['c'\]"),
        ({"g": 3, "c": 2, "x": 1}, r"unknown \['x'\]"),
        (0, r"'n_components' parameter of PCAFeatures must be .* Got 0 instead"),
        (
            {"g": 3, "c": 1.5},
            r"a dict \{group name: int >= 1\}\. Got \{'g': 3, 'c': 1.5\}",
        ),
    ],
)
def test_pca_features_bad_n_components(n_components, message):
    with pytest.raises(ValueError, match=message):
        PCAFeatures(n_components=n_components).fit(_numeric_frame())


@pytest.mark.parametrize(
    "transformer, message",
    [
        (PCAFeatures(method="ica"), r"'method' .* among \{.*'factor_analysis'.*\}"),
        (KMeansFeatures(output="proba"), r"'output' .* among \{.*'distance'.*\}"),
        (KMeansFeatures(n_init=0), r"'n_init' .* an int in the range \[1, inf\)"),
        (RankGauss(n_quantiles=1), r"'n_quantiles' .* an int in the range \[2, inf\)"),
        (RankGauss(subsample=0), r"'subsample' .* an int in the range \[1, inf\)"),
        (RowStatistics(stats=("mean", "median")), r"'stats' .* distinct names among"),
        (RowStatistics(stats=("mean", "mean")), r"'stats' .* distinct names among"),
        (RowStatistics(stats=()), r"'stats' .* a non-empty tuple"),
        (RowStatistics(stats="mean"), r"'stats' .* a non-empty tuple"),
        (CategoricalEncoder(drop="first"), r"'drop' .* among \{'if_binary'\} or None"),
        (VarianceSelector(threshold=-1), r"'threshold' .* in the range \[0.0, inf\)"),
    ],
    ids=lambda v: "message" if isinstance(v, str) else repr(v),
)
def test_bad_parameter_values_name_the_parameter(transformer, message):
    X = (
        _raw_frame()
        if isinstance(transformer, CategoricalEncoder)
        else _numeric_frame()
    )
    with pytest.raises(InvalidParameterError, match=message):
        transformer.fit(X)


def test_stats_may_be_a_list_in_any_order():
    X = _numeric_frame()
    out = RowStatistics(stats=["mean", "sum"]).fit(X).get_feature_names_out()
    assert out[-2:].tolist() == ["stat_gc_mean", "stat_gc_sum"]


def test_kmeans_features_onehot_and_distance():
    X = _numeric_frame()
    km = KMeansFeatures(n_clusters={"g": 5, "c": 3}, random_state=0).fit(X)
    Xt = km.transform(X)
    new = Xt[:, X.shape[1] :]
    assert new.shape[1] == 8
    assert set(np.unique(new)) == {0.0, 1.0}
    assert_array_equal(new[:, :5].sum(axis=1), 1)
    assert_array_equal(new[:, 5:].sum(axis=1), 1)
    genes = X.filter(regex="^g-").to_numpy()
    ref = KMeans(5, n_init="auto", random_state=0).fit(genes)
    assert_array_equal(new[:, :5].argmax(axis=1), ref.labels_)

    dist = KMeansFeatures(n_clusters=3, output="distance", random_state=0).fit(X)
    assert dist.get_feature_names_out()[-6:].tolist() == [
        f"kmeans_{g}_dist_{k}" for g in "gc" for k in range(3)
    ]
    assert_allclose(
        dist.transform(X)[:, X.shape[1] : X.shape[1] + 3],
        dist.kmeans_["g"].transform(genes),
    )


def test_kmeans_features_auto_and_cap():
    X = _numeric_frame(n=10)
    km = KMeansFeatures(random_state=0).fit(X)
    assert km.n_clusters_ == {"g": 10, "c": 4}  # 22 capped by the 10 rows


def test_row_statistics_values():
    X = _numeric_frame()
    X.iloc[0, X.columns.get_indexer([f"c-{i}" for i in range(10)])] = 2.5  # flat
    rs = RowStatistics().set_output(transform="pandas")
    Xt = rs.fit_transform(X)
    assert list(rs.column_groups_) == ["g", "c", "gc"]
    assert Xt.columns[X.shape[1] :].tolist() == [
        f"stat_{g}_{s}"
        for g in ("g", "c", "gc")
        for s in ("sum", "mean", "std", "skew", "kurtosis")
    ]
    for group, pattern in [("g", "^g-"), ("c", "^c-"), ("gc", "^[gc]-")]:
        block = X.filter(regex=pattern).to_numpy()
        assert_allclose(Xt[f"stat_{group}_sum"], block.sum(axis=1))
        assert_allclose(Xt[f"stat_{group}_mean"], block.mean(axis=1))
        assert_allclose(Xt[f"stat_{group}_std"], block.std(axis=1))
        skew = sp_stats.skew(block[1:], axis=1)
        kurt = sp_stats.kurtosis(block[1:], axis=1)
        assert_allclose(Xt[f"stat_{group}_skew"].iloc[1:], skew, atol=1e-10)
        assert_allclose(Xt[f"stat_{group}_kurtosis"].iloc[1:], kurt, atol=1e-10)
    assert Xt.loc[X.index[0], "stat_c_std"] == 0
    assert Xt.loc[X.index[0], "stat_c_skew"] == 0
    assert Xt.loc[X.index[0], "stat_c_kurtosis"] == 0
    assert np.isfinite(Xt.to_numpy()).all()


def test_row_statistics_chunks_give_same_result(monkeypatch):
    X = _numeric_frame()
    full = RowStatistics().fit_transform(X)
    monkeypatch.setattr(RowStatistics, "_chunk_rows", 7)
    assert_allclose(RowStatistics().fit_transform(X), full)


def test_variance_selector_keeps_cp_columns_and_drops_low_variance():
    X = _numeric_frame()
    X["g-1"] *= 0.1  # variance ~ 0.01 * var
    X["c-2"] = 3.0  # constant
    vs = VarianceSelector(threshold=0.8).set_output(transform="pandas")
    Xt = vs.fit_transform(X)
    cp = [c for c in X.columns if c.startswith("cp_")]
    assert len(cp) == 7 and all(c in Xt.columns for c in cp)
    assert "g-1" not in Xt.columns and "c-2" not in Xt.columns
    kept_numeric = [c for c in X.columns if c not in cp and X[c].var(ddof=0) > 0.8]
    assert Xt.columns.tolist() == [c for c in X.columns if c in cp or c in kept_numeric]
    # without protection the 0/1 columns (variance <= 0.25) go
    assert not any(
        c.startswith("cp_")
        for c in VarianceSelector(keep=None).fit(X).get_feature_names_out()
    )
    # arrays: keep by index
    idx = VarianceSelector(keep=[0, 1]).fit(X.to_numpy())
    assert idx.get_support()[:2].all() and not idx.get_support()[2:7].any()


def test_variance_selector_warns_when_nothing_is_left():
    X = np.random.RandomState(0).uniform(size=(30, 4))  # variance 1/12
    vs = VarianceSelector(threshold=0.8).fit(X)
    with pytest.warns(UserWarning, match="no column has a variance above"):
        assert vs.transform(X).shape == (30, 0)


# --------------------------------------------------------------------------
# The recipe pipeline, seeds and leakage
# --------------------------------------------------------------------------


def test_make_moa_features_steps_and_output():
    X = _raw_frame()
    features = _small_recipe()
    assert isinstance(features, Pipeline)
    assert list(features.named_steps) == [
        "encode",
        "rankgauss",
        "pca",
        "variance",
        "kmeans",
        "stats",
    ]
    Xt = features.fit_transform(X)
    assert isinstance(Xt, pd.DataFrame)
    assert Xt.index.equals(X.index)
    cols = Xt.columns.tolist()
    assert cols[:7] == CategoricalEncoder().fit(X).get_feature_names_out()[:7].tolist()
    assert "cp_type_ctl_vehicle" in cols
    assert [c for c in cols if c.startswith("pca_")]
    assert [c for c in cols if c.startswith("kmeans_")] == [
        "kmeans_g_0",
        "kmeans_g_1",
        "kmeans_g_2",
        "kmeans_g_3",
        "kmeans_c_0",
        "kmeans_c_1",
    ]
    assert (
        cols[-15:]
        == RowStatistics().fit(_numeric_frame()).get_feature_names_out()[-15:].tolist()
    )
    assert Xt.shape[1] > X.shape[1]
    assert_array_equal(cols, features.get_feature_names_out())
    assert np.isfinite(Xt.to_numpy()).all()


def test_same_seed_gives_identical_output():
    X = _raw_frame()
    a = _small_recipe(random_state=3).fit_transform(X)
    b = _small_recipe(random_state=3).fit_transform(X)
    pd.testing.assert_frame_equal(a, b)
    # and a clone fitted again reproduces it (GridSearchCV / CV refits clones)
    c = clone(_small_recipe(random_state=3)).fit(X).transform(X)
    pd.testing.assert_frame_equal(a, c)


def test_each_random_transformer_is_seeded():
    X = _numeric_frame()
    for est in [
        KMeansFeatures(n_clusters=5, random_state=7),
        PCAFeatures(n_components=3, method="factor_analysis", random_state=7),
        RankGauss(subsample=50, random_state=7),  # subsampling is random
    ]:
        assert_array_equal(clone(est).fit_transform(X), clone(est).fit_transform(X))


def test_fit_only_on_fit_data_and_transform_does_not_refit():
    X = _raw_frame(n=300)
    train, test = X.iloc[:200], X.iloc[200:]
    features = _small_recipe().fit(train)
    state = pickle.dumps(features)
    out_test = features.transform(test)
    # transforming other data changes nothing fitted ...
    assert pickle.dumps(features) == state
    # ... and each row is transformed independently of the others in the batch
    both = features.transform(pd.concat([test, train]))
    pd.testing.assert_frame_equal(both.loc[test.index], out_test)
    # fitting on train + test (transductively) would give other features
    on_all = _small_recipe().fit(X).transform(test)
    assert on_all.shape != out_test.shape or not np.allclose(on_all, out_test)
    # the quantiles come from the training rows only
    rg = features.named_steps["rankgauss"].quantile_transformer_
    g0 = features.named_steps["encode"].get_feature_names_out().tolist().index("g-0")
    col = features.named_steps["rankgauss"].columns_.tolist().index(g0)
    assert_allclose(
        rg.quantiles_[[0, -1], col], [train["g-0"].min(), train["g-0"].max()]
    )


def test_recipe_steps_can_be_switched_off():
    X = _raw_frame()
    features = _small_recipe().set_params(kmeans="passthrough", pca="passthrough")
    cols = features.fit_transform(X).columns
    assert not any(c.startswith(("pca_", "kmeans_")) for c in cols)


# --------------------------------------------------------------------------
# End to end on a make_moa world: cross_val_score and GridSearchCV
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moa_world():
    from moa_sklearn.datasets import make_moa

    return make_moa(
        300, n_test=20, n_genes=30, n_cells=10, n_scored=6, n_nonscored=4,
        random_state=0,
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cross_val_score_on_make_moa_with_drug_splitter(moa_world):
    X, Y, drugs = moa_world.data, moa_world.target, moa_world.groups
    model = make_pipeline(
        _small_recipe(),
        MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0),
    )
    scores = cross_val_score(
        model,
        X,
        Y,
        groups=drugs,
        cv=DrugMultilabelStratifiedKFold(5, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
    )
    assert scores.shape == (5,)
    assert np.all(np.isfinite(scores)) and np.all(scores < 0)


def test_grid_search_over_two_transformers_with_drug_splitter(moa_world):
    X, Y, drugs = moa_world.data, moa_world.target, moa_world.groups
    model = Pipeline(
        [
            ("features", _small_recipe()),
            ("knn", KNeighborsClassifier(n_neighbors=15)),
        ]
    )
    grid = {
        "features__pca__n_components": [{"g": 2, "c": 1}, {"g": 6, "c": 3}],
        "features__kmeans__n_clusters": [2, 4],
        "features__variance__threshold": [0.0, 0.8],
    }
    search = GridSearchCV(
        model,
        grid,
        cv=DrugMultilabelStratifiedKFold(3, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, Y, groups=drugs)
    assert len(search.cv_results_["params"]) == 8
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_.named_steps["features"]
    assert (
        best.named_steps["kmeans"].n_clusters
        == search.best_params_["features__kmeans__n_clusters"]
    )
    proba = search.predict_proba(moa_world.test_data)
    assert len(proba) == Y.shape[1]


def test_recipe_on_a_raw_array_says_what_to_pass():
    """The raw 875 columns as an array (strings inside): no column names, so
    the recipe cannot find cp_type / g- / c-; the error says so and what to
    pass, instead of numpy's "could not convert string to float"."""
    X = _raw_frame(n=40).to_numpy()
    with pytest.raises(ValueError) as info:
        make_moa_features().fit(X)
    message = str(info.value)
    assert "column(s) [0, 2] of X hold non-numeric values (e.g. " in message
    assert "no column names" in message and "cp_type" in message
    assert "DataFrame with lish-moa's column names" in message
    assert "could not convert" not in message
    # a step that needs numbers names the string columns of an array too
    with pytest.raises(ValueError, match=r"RankGauss needs numeric.*\[0, 2\]"):
        RankGauss().fit(X)
    # explicit categorical columns of an array are fine
    assert CategoricalEncoder(columns=[0, 1, 2]).fit(X).transform(X).shape[0] == 40
    with pytest.raises(ValueError, match=r"encodes the columns \[1\].*\[0, 2\]"):
        CategoricalEncoder(columns=[1]).fit(X)
