import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import QuantileTransformer

from moa_sklearn.datasets import load_moa, make_moa, write_moa
from moa_sklearn.metrics import columnwise_log_loss, mean_columnwise_log_loss


@pytest.fixture(scope="module")
def full_world():
    """The default, lish-moa-sized world (about 10 s)."""
    return make_moa(random_state=0)


# ---------------------------------------------------------------- make_moa


def test_full_size_layout(full_world):
    w = full_world
    assert w.data.shape == (23814, 875)
    assert w.test_data.shape == (3982, 875)
    assert list(w.data.columns[:3]) == ["cp_type", "cp_time", "cp_dose"]
    assert w.data.columns[3] == "g-0" and w.data.columns[-1] == "c-99"
    assert w.target.shape == (23814, 206) and w.target_aux.shape == (23814, 402)
    assert w.data.index.name == "sig_id" and w.data.index.is_unique
    assert not w.data.index.isin(w.test_data.index).any()
    assert set(w.data["cp_time"]) == {24, 48, 72}
    assert set(w.data["cp_dose"]) == {"D1", "D2"}
    assert (w.target.index == w.data.index).all()
    assert (w.groups.index == w.data.index).all()


def test_full_size_invariants(full_world):
    w = full_world
    ctl = (w.data["cp_type"] == "ctl_vehicle").to_numpy()
    assert ctl.mean() == pytest.approx(0.078, abs=0.002)
    assert w.target[ctl].to_numpy().sum() == 0
    assert w.target_aux[ctl].to_numpy().sum() == 0
    assert w.groups[ctl].nunique() == 1  # one control pseudo-drug
    assert not w.groups[~ctl].isin(w.groups[ctl]).any()
    # labels are constant within a drug
    labels = pd.concat([w.target, w.target_aux], axis=1)
    assert (labels.groupby(w.groups.to_numpy()).nunique() == 1).all().all()
    # mostly 6-row drugs, a few with hundreds of rows
    sizes = w.groups[~ctl].value_counts()
    assert (sizes == 6).mean() > 0.85
    assert ((sizes >= 150) & (sizes <= 800)).sum() == 8
    # every dose x time in each 6-row drug
    six = sizes.index[sizes == 6]
    cond = w.data["cp_time"].astype(str) + w.data["cp_dose"]
    assert (cond[w.groups.isin(six)].groupby(w.groups).nunique() == 6).all()


def test_full_size_label_statistics(full_world):
    Y = full_world.target.to_numpy()
    positives = Y.sum(axis=0)
    assert positives.min() >= 1  # every scored target is seen
    assert positives.min() <= 12 and positives.max() >= 300
    assert 20 <= np.median(positives) <= 80
    per_row = Y.sum(axis=1)
    assert 0.3 < (per_row == 0).mean() < 0.45
    assert 0.45 < (per_row == 1).mean() < 0.65
    assert 0.03 < (per_row >= 2).mean() < 0.15
    aux = full_world.target_aux.to_numpy().sum(axis=0)
    assert np.median(aux) < np.median(positives)  # nonscored are rarer


def test_full_size_feature_traits(full_world):
    X = full_world.data
    cells = X.filter(regex="^c-").to_numpy()
    genes = X.filter(regex="^g-").to_numpy()
    # cells: strongly inter-correlated, heavy left tail, floor at -10
    corr = np.corrcoef(cells[:, :20].T)[np.triu_indices(20, 1)]
    assert corr.mean() > 0.5
    assert cells.min() >= -10 and (cells < -9).mean() > 0.001
    skew = ((cells - cells.mean(0)) ** 3).mean(0) / cells.std(0) ** 3
    assert np.median(skew) < -1
    # genes: correlated in blocks (some strongly correlated pairs, most not)
    gcorr = np.abs(np.corrcoef(genes[:, :200].T)[np.triu_indices(200, 1)])
    assert (gcorr > 0.15).mean() > 0.005 and np.median(gcorr) < 0.1
    # heavier tails than Gaussian
    kurt = ((genes - genes.mean(0)) ** 4).mean(0) / genes.var(0) ** 2
    assert np.median(kurt) > 3.5


def test_effects_grow_with_dose_and_time(full_world):
    X = full_world.data
    trt = X["cp_type"] == "trt_cp"
    spread = (
        X[trt]
        .filter(regex="^c-")
        .std(axis=1)
        .groupby([X["cp_time"], X["cp_dose"]])
        .mean()
    )
    assert spread[(72, "D2")] > spread[(24, "D1")]


def test_bayes_beats_prior_and_is_calibrated(full_world):
    w = full_world
    Yt = w.test_target.to_numpy()
    bayes = w.test_bayes_proba.to_numpy()
    ctl = (w.test_data["cp_type"] == "ctl_vehicle").to_numpy()
    assert np.all(bayes[ctl] == 0)
    prior = np.tile(
        w.target.to_numpy()[w.data["cp_type"] == "trt_cp"].mean(0), (len(Yt), 1)
    )
    prior[ctl] = 0
    prior_loss = mean_columnwise_log_loss(Yt, np.clip(prior, 1e-5, 1))
    bayes_loss = mean_columnwise_log_loss(Yt, bayes)
    assert bayes_loss < 0.75 * prior_loss
    # calibration: mean predicted probability matches the observed rate
    assert bayes.mean() == pytest.approx(Yt.mean(), rel=0.1)
    bins = np.digitize(bayes.ravel(), [0.01, 0.1, 0.5])
    for b in range(4):
        sel = bins == b
        assert bayes.ravel()[sel].mean() == pytest.approx(
            Yt.ravel()[sel].mean(), abs=0.05 + 0.2 * bayes.ravel()[sel].mean()
        )


def test_a_model_cannot_beat_bayes_on_fresh_drugs():
    w = make_moa(
        n_samples=4000,
        n_test=4000,
        n_genes=60,
        n_cells=20,
        n_scored=10,
        n_nonscored=10,
        random_state=1,
    )
    cols = [c for c in w.data.columns if c[:2] in ("g-", "c-")]
    qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")
    pca = PCA(20, random_state=0)
    A = pca.fit_transform(qt.fit_transform(w.data[cols]))
    B = pca.transform(qt.transform(w.test_data[cols]))
    Y, Yt = w.target.to_numpy(), w.test_target.to_numpy()
    model = np.zeros(Yt.shape)
    for j in range(Y.shape[1]):
        model[:, j] = LogisticRegression(C=0.1).fit(A, Y[:, j]).predict_proba(B)[:, 1]
    model = np.clip(model, 1e-4, 1 - 1e-4)
    bayes = w.test_bayes_proba.to_numpy()

    # per-row loss difference: the model may only win by noise
    def row_loss(p):
        p = np.clip(p, 1e-15, 1 - 1e-15)
        return -(Yt * np.log(p) + (1 - Yt) * np.log1p(-p)).mean(axis=1)

    diff = row_loss(model) - row_loss(bayes)
    assert diff.mean() > -3 * diff.std() / np.sqrt(len(diff))
    # and the model does learn something
    prior = np.clip(np.tile(Y.mean(0), (len(Yt), 1)), 1e-4, 1)
    assert mean_columnwise_log_loss(Yt, model) < mean_columnwise_log_loss(Yt, prior)


def test_signal_zero_has_no_information():
    w = make_moa(
        n_samples=300,
        n_test=120,
        n_genes=10,
        n_cells=5,
        n_scored=6,
        n_nonscored=4,
        signal=0.0,
        random_state=0,
    )
    # with toxicity off the features still carry the (tiny) cell shift of
    # toxic MoAs, so compare treated rows: spread across rows is small
    bayes = w.bayes_proba[w.data["cp_type"] == "trt_cp"].to_numpy()
    assert bayes.std(axis=0).max() < bayes.mean(axis=0).max()


def test_no_test_rows():
    w = make_moa(
        n_samples=100,
        n_test=0,
        n_genes=6,
        n_cells=3,
        n_scored=4,
        n_nonscored=2,
        random_state=0,
    )
    assert w.data.shape == (100, 12) and "test_data" not in w


def test_deterministic_and_seed_dependent():
    kw = dict(n_samples=200, n_test=50, n_genes=8, n_cells=4, n_scored=5, n_nonscored=3)
    a, b, c = (
        make_moa(**kw, random_state=5),
        make_moa(**kw, random_state=5),
        make_moa(**kw, random_state=6),
    )
    for key in ("data", "target", "target_aux", "groups", "bayes_proba", "test_data"):
        assert a[key].equals(b[key]), key
    assert not a.data.equals(c.data)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 5}, "n_samples"),
        ({"n_scored": 0}, "n_scored"),
        ({"signal": -1.0}, "signal"),
        ({"signal": float("nan")}, "signal"),
        ({"control_fraction": 0.7}, "control_fraction"),
        ({"n_test": 2.5}, "n_test"),
    ],
)
def test_make_moa_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_moa(**kwargs)


def test_bayes_columnwise_losses_long_tailed(full_world):
    losses = columnwise_log_loss(full_world.target, full_world.bayes_proba)
    assert losses.max() > 5 * np.median(losses)


# ---------------------------------------------------------------- load / write


@pytest.fixture
def folder(tmp_path, small_world):
    write_moa(small_world, tmp_path)
    return tmp_path


def test_round_trip_identical(folder, small_world):
    moa = load_moa(folder)
    for key in ("data", "target", "target_aux", "test_data"):
        pd.testing.assert_frame_equal(moa[key], small_world[key])
    pd.testing.assert_series_equal(moa.groups, small_world.groups)
    assert moa.feature_names == list(small_world.data.columns)
    assert moa.target_names == small_world.target_names
    assert list(moa.sample_submission.columns) == small_world.target_names


def test_rows_aligned_by_sig_id_whatever_the_order(folder, small_world):
    for name in ("train_targets_scored.csv", "train_drug.csv"):
        frame = pd.read_csv(folder / name)
        frame.sample(frac=1, random_state=0).to_csv(folder / name, index=False)
    moa = load_moa(folder)
    pd.testing.assert_frame_equal(moa.target, small_world.target)
    pd.testing.assert_series_equal(moa.groups, small_world.groups)


def test_optional_files(folder):
    (folder / "test_features.csv").unlink()
    (folder / "sample_submission.csv").unlink()
    moa = load_moa(folder)
    assert "test_data" not in moa and "sample_submission" not in moa


def _edit(folder, name, change):
    frame = pd.read_csv(folder / name)
    changed = change(frame)
    (frame if changed is None else changed).to_csv(folder / name, index=False)


@pytest.mark.parametrize(
    "name, change, match",
    [
        (
            "train_features.csv",
            lambda f: f.drop(columns="g-3"),
            r"train_features.csv: missing column\(s\) \['g-3'\]",
        ),
        (
            "train_features.csv",
            lambda f: f.drop(columns="cp_dose"),
            r"train_features.csv: missing column\(s\) \['cp_dose'\]",
        ),
        (
            "train_features.csv",
            lambda f: f.insert(4, "extra", 1.0),
            r"train_features.csv: unexpected column\(s\) \['extra'\]",
        ),
        (
            "train_features.csv",
            lambda f: f.loc.__setitem__((0, "cp_type"), "x"),
            "train_features.csv: cp_type must be one of",
        ),
        (
            "train_features.csv",
            lambda f: f.loc.__setitem__((0, "g-0"), np.nan),
            r"train_features.csv: NaN or infinite values in column\(s\) \['g-0'\]",
        ),
        (
            "train_features.csv",
            lambda f: f.loc.__setitem__((3, "c-2"), np.inf),
            r"NaN or infinite values in column\(s\) \['c-2'\] \(1 cell",
        ),
        (
            "train_targets_scored.csv",
            lambda f: f.iloc.__setitem__((2, 3), np.nan),
            r"train_targets_scored.csv: .* column\(s\) \['moa_002'\] hold NaN",
        ),
        (
            "train_targets_nonscored.csv",
            lambda f: f.iloc.__setitem__((2, 1), np.nan),
            r"train_targets_nonscored.csv: .* \['aux_000'\] hold NaN .* 1 row",
        ),
        (
            "train_targets_scored.csv",
            lambda f: f.iloc.__setitem__((0, 1), 2),
            r"train_targets_scored.csv: targets must be 0 or 1; column\(s\) "
            r"\['moa_000'\] hold other values \(e.g. \[2\]\)",
        ),
        (
            "train_targets_nonscored.csv",
            lambda f: f.iloc.__setitem__((1, 0), "id_x"),
            "train_targets_nonscored.csv: sig_id values do not match",
        ),
        (
            "train_drug.csv",
            lambda f: f.iloc.__setitem__((1, 0), f.iloc[0, 0]),
            "train_drug.csv: 1 duplicate sig_id",
        ),
        (
            "train_drug.csv",
            lambda f: f.iloc.__setitem__((1, 1), np.nan),
            r"train_drug.csv: 1 drug_id value\(s\) are missing .* \['id_",
        ),
        (
            "train_drug.csv",
            lambda f: f.rename(columns={"drug_id": "drug"}),
            "train_drug.csv: column 'drug_id' is missing",
        ),
        (
            "test_features.csv",
            lambda f: f.drop(columns="c-1"),
            "test_features.csv",
        ),
        (
            "sample_submission.csv",
            lambda f: f.drop(columns=f.columns[1]),
            "sample_submission.csv",
        ),
    ],
)
def test_load_errors_name_file_and_problem(folder, name, change, match):
    _edit(folder, name, change)
    with pytest.raises(ValueError, match=match):
        load_moa(folder)


@pytest.mark.parametrize("name", ["train_features.csv", "train_drug.csv"])
def test_missing_file(folder, name):
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        load_moa(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_moa(tmp_path / "nope")


_FILES = [
    "train_features.csv",
    "train_targets_scored.csv",
    "train_targets_nonscored.csv",
    "train_drug.csv",
    "test_features.csv",
    "sample_submission.csv",
]


@pytest.mark.parametrize("name", _FILES)
def test_header_only_file_has_no_rows(folder, name):
    """A file with its header and no row is said to have no rows (not e.g.
    'non-numeric values' for the empty feature columns)."""
    header = (folder / name).read_text().splitlines()[0]
    (folder / name).write_text(header + "\n")
    with pytest.raises(ValueError, match=rf"{name}: the file has no rows"):
        load_moa(folder)


@pytest.mark.parametrize("name", ["train_features.csv", "sample_submission.csv"])
def test_empty_file(folder, name):
    (folder / name).write_text("")
    with pytest.raises(ValueError, match=rf"{name}: the file is empty"):
        load_moa(folder)
