import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils import Bunch

from moa_sklearn.datasets import _KAGGLE_FILES, load_moa, make_moa, write_moa
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


def test_full_size_label_vectors_are_like_lish_moas(full_world):
    """About 330 distinct scored vectors; a few drugs of 3 to 7 targets."""
    Y = full_world.target
    assert 290 <= len(Y.drop_duplicates()) <= 370  # lish-moa: 328
    per_drug = Y.groupby(full_world.groups.to_numpy()).max().sum(axis=1)
    counts = per_drug.value_counts()
    assert per_drug.max() <= 7
    assert 15 <= counts[counts.index >= 3].sum() <= 80  # drugs of 3+ targets
    assert counts[1] > 5 * counts[2] > 5 * counts[counts.index >= 3].sum()
    # targets of a single positive drug exist, as in lish-moa
    drugs_per_target = Y.groupby(full_world.groups.to_numpy()).max().sum(axis=0)
    assert 1 <= (drugs_per_target == 1).sum() <= 30


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
    # no signal, no toxic shift either: the posterior of a treated row is the
    # prior, the same for every row
    bayes = w.bayes_proba[w.data["cp_type"] == "trt_cp"].to_numpy()
    assert bayes.std(axis=0).max() < 1e-9
    assert bayes.mean(axis=0).max() > 0.01


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


def _rankgauss_lr(world, C=0.05):
    """Logistic regression per target on RankGauss features + condition one-hots."""
    cols = [c for c in world.data.columns if c[:2] in ("g-", "c-")]
    qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")

    def design(frame, fit=False):
        gc = qt.fit_transform(frame[cols]) if fit else qt.transform(frame[cols])
        cond = np.column_stack(
            [frame.cp_time == 24, frame.cp_time == 48, frame.cp_dose == "D1"]
        )
        return np.hstack([gc, cond])

    A, B = design(world.data, fit=True), design(world.test_data)
    Y = world.target.to_numpy()
    P = np.column_stack(
        [
            LogisticRegression(C=C, max_iter=500).fit(A, Y[:, j]).predict_proba(B)[:, 1]
            for j in range(Y.shape[1])
        ]
    )
    return np.clip(P, 1e-4, 1 - 1e-4)


def _gap_closed(world, P):
    Y, Yt = world.target.to_numpy(), world.test_target.to_numpy()
    prior = mean_columnwise_log_loss(
        Yt, np.clip(np.tile(Y.mean(0), (len(Yt), 1)), 1e-4, 1)
    )
    bayes = mean_columnwise_log_loss(Yt, world.test_bayes_proba.to_numpy())
    return (prior - mean_columnwise_log_loss(Yt, P)) / (prior - bayes)


NONLINEAR = dict(opposed_modes=0.7, variance_effect=1.0, time_interaction=0.7)
LINEAR = dict(opposed_modes=0.0, variance_effect=0.0, time_interaction=0.0)


@pytest.fixture(scope="module")
def small_worlds():
    """The linear world of earlier defaults, and a strongly non-linear one."""
    kw = dict(n_samples=5000, n_test=5000, n_genes=60, n_cells=20, n_scored=8)
    kw.update(n_nonscored=8, random_state=1)
    return make_moa(**kw, **LINEAR), make_moa(**kw, **NONLINEAR)


def test_nonlinear_effects_keep_bayes_exact_and_calibrated(small_worlds):
    _, w = small_worlds
    Yt, bayes = w.test_target.to_numpy(), w.test_bayes_proba.to_numpy()
    assert bayes.mean() == pytest.approx(Yt.mean(), rel=0.1)
    bins = np.digitize(bayes.ravel(), [0.02, 0.2, 0.6])
    for b in range(4):
        sel = bins == b
        assert bayes.ravel()[sel].mean() == pytest.approx(
            Yt.ravel()[sel].mean(), abs=0.03 + 0.15 * bayes.ravel()[sel].mean()
        )
    # a fitted model does not beat the posterior on unseen drugs
    assert 0 < _gap_closed(w, _rankgauss_lr(w)) < 1


def test_nonlinear_effects_change_only_the_features(small_worlds):
    plain, nonlinear = small_worlds
    for key in ("target", "target_aux", "groups", "test_target", "test_groups"):
        assert plain[key].equals(nonlinear[key]), key
    assert plain.data.index.equals(nonlinear.data.index)
    assert not plain.data.equals(nonlinear.data)


def test_nonlinear_effects_leave_a_linear_model_further_behind(small_worlds):
    plain, nonlinear = small_worlds
    linear_share = _gap_closed(plain, _rankgauss_lr(plain))
    assert _gap_closed(nonlinear, _rankgauss_lr(nonlinear)) < 0.5 * linear_share


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"opposed_modes": 1.5}, "opposed_modes"),
        ({"variance_effect": -1.0}, "variance_effect"),
        ({"time_interaction": float("inf")}, "time_interaction"),
        ({"variance_effect": True}, "variance_effect"),
    ],
)
def test_nonlinear_effects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_moa(n_samples=100, **kwargs)


# ------------------------------------------------------- make_moa(labels_from=)
@pytest.fixture(scope="module")
def label_table():
    """A small label table of our own, with a few drugs of many labels."""
    w = make_moa(
        n_samples=1800,
        n_test=0,
        n_genes=8,
        n_cells=4,
        n_scored=10,
        n_nonscored=6,
        random_state=3,
    )
    treated = (w.data["cp_type"] != "ctl_vehicle").to_numpy()
    drugs = w.groups[treated].unique()[:3]
    many = np.zeros(16, dtype=int)
    many[[0, 2, 3, 5, 7, 11, 13]] = 1  # 7 labels: more modes than are kept
    for drug in drugs:
        rows = (w.groups == drug).to_numpy()
        w.target.loc[rows] = many[:10]
        w.target_aux.loc[rows] = many[10:]
    return w


def test_labels_from_keeps_rows_drugs_and_labels(label_table):
    t = label_table
    w = make_moa(labels_from=t, n_test=600, n_genes=30, n_cells=10, random_state=0)
    for key in ("target", "target_aux", "groups"):
        assert w[key].equals(t[key]), key
    assert w.data.index.equals(t.data.index)
    assert w.data[["cp_type", "cp_time", "cp_dose"]].equals(
        t.data[["cp_type", "cp_time", "cp_dose"]]
    )
    assert w.data.shape == (len(t.data), 3 + 30 + 10)
    ctl = (w.data["cp_type"] == "ctl_vehicle").to_numpy()
    assert (w.bayes_proba.to_numpy()[ctl] == 0).all()
    # test rows: new drugs and ids, label vectors seen in the table
    assert not w.test_groups.isin(t.groups).any()
    assert not w.test_data.index.isin(t.data.index).any()
    seen = {tuple(r) for r in np.hstack([t.target, t.target_aux])}
    assert {tuple(r) for r in np.hstack([w.test_target, w.test_target_aux])} <= seen


def test_labels_from_bayes_is_exact(label_table):
    w = make_moa(
        labels_from=label_table,
        n_test=6000,
        n_genes=40,
        n_cells=10,
        random_state=0,
        **NONLINEAR,
    )
    Y = np.hstack([w.test_target, w.test_target_aux])[:, :10]
    bayes = w.test_bayes_proba.to_numpy()
    assert bayes.mean() == pytest.approx(Y.mean(), rel=0.1)
    # the targets of the 7-label drugs (whose class keeps 16 of its 128 mode
    # combinations) are as frequent as predicted where the posterior is sure
    for j in (0, 7):
        sure = bayes[:, j] > 0.8
        assert sure.sum() > 20
        assert Y[sure, j].mean() == pytest.approx(bayes[sure, j].mean(), abs=0.08)


def test_labels_from_is_deterministic(label_table):
    kw = dict(labels_from=label_table, n_test=60, n_genes=6, n_cells=3)
    a, b = make_moa(**kw, random_state=4), make_moa(**kw, random_state=4)
    assert a.data.equals(b.data) and a.test_data.equals(b.test_data)


def test_labels_from_bad_tables(label_table):
    with pytest.raises(ValueError, match=r"\['n_samples'\] come from the label table"):
        make_moa(labels_from=label_table, n_samples=100)
    with pytest.raises(TypeError, match="the Bunch that load_moa returns"):
        make_moa(labels_from=label_table.target)
    bad = Bunch(**label_table)
    ctl = (bad.data["cp_type"] == "ctl_vehicle").to_numpy()
    bad.target = bad.target.copy()
    bad.target.iloc[np.flatnonzero(ctl)[0], 0] = 1
    with pytest.raises(ValueError, match="control rows"):
        make_moa(labels_from=bad)
    bad = Bunch(**label_table)
    bad.data = bad.data.drop(columns="cp_dose")
    with pytest.raises(ValueError, match="lacks the column"):
        make_moa(labels_from=bad)


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


@pytest.mark.parametrize("name", _KAGGLE_FILES)
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
