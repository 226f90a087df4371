"""The moa-sklearn command, end to end through ``main([...])`` on a tiny world."""

import json
import subprocess
import sys
import warnings
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from moa_sklearn import cli
from moa_sklearn.datasets import _KAGGLE_FILES
from moa_sklearn.metrics import mean_columnwise_log_loss

pytest.importorskip("torch")
pytest.importorskip("skorch")
pytest.importorskip("pytorch_tabnet")

# tiny nets, features and folds: a fold takes about a second on one core
CONFIG = {
    "models": ["twostep", "tabnet"],
    "folds": 2,
    "inner_folds": 2,
    "seed": 0,
    "device": "cpu",
    "feature_params": {
        "n_components": {"g": 6, "c": 3},
        "n_clusters": {"g": 3, "c": 2},
    },
    "model_params": {
        "twostep": {
            "hidden_sizes": [16],
            "dropouts": 0.1,
            "max_epochs_pretrain": 2,
            "max_epochs_finetune": 2,
            "unfreeze_every": 1,
            "batch_size": 64,
            "n_threads": 1,
        },
        "tabnet": {
            "n_d": 8,
            "n_a": 8,
            "max_epochs": 3,
            "batch_size": 64,
            "virtual_batch_size": 16,
            "n_threads": 1,
        },
    },
}
MAKE = [
    "--n-samples", "300", "--n-test", "60", "--n-genes", "24", "--n-cells", "8",
    "--n-scored", "6", "--n-nonscored", "5", "--seed", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert cli.main(["make-data", str(root / "data"), *MAKE]) == 0
    (root / "cfg.json").write_text(json.dumps(CONFIG))
    return root


@pytest.fixture(scope="module")
def cv_run(work):
    """A complete 2-fold CV run (shared by the tests that read one)."""
    assert cli.main(cli_args(work, "cv", "cvdir")) == 0
    return work / "cvdir"


def cli_args(work, command, out, *extra):
    return [
        command,
        str(work / "data"),
        "-o",
        str(work / out),
        "--config",
        str(work / "cfg.json"),
        *extra,
    ]


def test_make_data_writes_the_layout_and_the_truth(work):
    names = sorted(p.name for p in (work / "data").iterdir())
    assert names == [
        "sample_submission.csv",
        "test_features.csv",
        "train_drug.csv",
        "train_features.csv",
        "train_targets_nonscored.csv",
        "train_targets_scored.csv",
        "truth",
    ]
    truth = sorted(p.name for p in (work / "data" / "truth").iterdir())
    assert truth == [
        "bayes_proba.csv",
        "test_bayes_proba.csv",
        "test_targets_scored.csv",
    ]
    bayes = pd.read_csv(work / "data" / "truth" / "bayes_proba.csv")
    assert bayes.shape == (300, 7)


def test_cv_writes_folds_summary_and_oof(cv_run, work, capsys):
    out = cv_run
    for k in range(2):
        assert (out / f"fold_{k}.npz").is_file()
        assert (out / f"fold_{k}.json").is_file()
    assert not list(out.glob("*.tmp*"))
    summary = json.loads((out / "cv_summary.json").read_text())
    assert summary["n_folds"] == 2
    assert set(summary["model_scores"]) == {"twostep", "tabnet"}
    assert summary["bayes_score"] < summary["prior_score"]
    # the logistic baseline, scored on the same folds: its OOF loss is that of
    # the saved per-fold predictions, and it is a real model (not the prior)
    baseline = np.full((300, 6), np.nan)
    for k in range(2):
        with np.load(out / f"fold_{k}.npz") as f:
            baseline[f["test"]] = f["baseline"]
    Y_all = pd.read_csv(work / "data" / "train_targets_scored.csv", index_col="sig_id")
    assert summary["baseline_score"] == pytest.approx(
        mean_columnwise_log_loss(Y_all, baseline), rel=1e-5
    )
    assert summary["bayes_score"] < summary["baseline_score"]
    for w in summary["weights"]:
        assert abs(sum(w.values()) - 1) < 1e-6

    # the OOF file covers every row once and its loss is the summary's
    oof = pd.read_csv(out / "oof.csv", index_col="sig_id")
    Y = pd.read_csv(work / "data" / "train_targets_scored.csv", index_col="sig_id").loc[
        oof.index
    ]
    assert oof.shape == (300, 6) and not oof.isna().any().any()
    assert mean_columnwise_log_loss(Y, oof) == pytest.approx(summary["score"])
    # per-fold scores are those of the fold's rows
    cp_type = pd.read_csv(work / "data" / "train_features.csv")["cp_type"]
    n_control = 0
    for k in range(2):
        info = json.loads((out / f"fold_{k}.json").read_text())
        with np.load(out / f"fold_{k}.npz") as f:
            rows = oof.iloc[f["test"]]
            assert np.allclose(rows.to_numpy(), f["proba"])
            assert f["per_model"].shape == (2, len(f["test"]), 6)
            # every model's control rows at the floor, as the blend's
            control = cp_type.iloc[f["test"]].eq("ctl_vehicle").to_numpy()
            assert np.allclose(f["per_model"][:, control], 5e-4)
            assert np.allclose(f["proba"][control], 5e-4)
            n_control += control.sum()
            # the same fit predicting as refit=False: blend, then each model
            folded = f["fold_models"]
            assert folded.shape == (3, len(f["test"]), 6)
            assert np.allclose(folded[:, control], 5e-4)
            assert not np.allclose(folded[0], f["proba"])
            assert info["fold_models_score"] == pytest.approx(
                mean_columnwise_log_loss(Y.iloc[f["test"]], folded[0]), rel=1e-4
            )
        assert info["score"] == pytest.approx(summary["fold_scores"][k])
        assert info["history"]["twostep"]  # learning curves were saved
        assert info["peak_memory_mib"] > 0  # of the process that fitted it
    assert n_control > 0
    assert summary["fold_models_score"] > 0
    assert set(summary["fold_models_model_scores"]) == {"twostep", "tabnet"}


def test_fit_predict_writes_a_submission(work, cv_run, capsys):
    model = work / "model.joblib"
    assert cli.main(cli_args(work, "fit", "model.joblib")) == 0
    capsys.readouterr()
    sub_path = work / "submission.csv"
    assert (
        cli.main(["predict", str(model), str(work / "data"), "-o", str(sub_path)]) == 0
    )
    assert "test log loss" in capsys.readouterr().err  # make-data's truth
    sub = pd.read_csv(sub_path)
    sample = pd.read_csv(work / "data" / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert sub["sig_id"].tolist() == sample["sig_id"].tolist()
    proba = sub.drop(columns="sig_id").to_numpy()
    assert ((proba > 0) & (proba < 1)).all()
    test = pd.read_csv(work / "data" / "test_features.csv").set_index("sig_id")
    control = test.loc[sub["sig_id"], "cp_type"].eq("ctl_vehicle").to_numpy()
    assert control.any()
    assert (proba[control] <= 1e-3).all()


class _Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.text, self.cells = [], {}, {}
        self._span = self._table = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "span":
            self._span = attrs.get("id")
        if tag == "table":
            self._table = attrs.get("id")
            self.cells[self._table] = []
        if tag == "tr" and self._table:
            self.cells[self._table].append([])

    def handle_endtag(self, tag):
        if tag == "span":
            self._span = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._span:
            self.text[self._span] = data
        if self._table and self.cells[self._table]:
            self.cells[self._table][-1].append(data)


def test_report_has_the_sections_and_the_saved_numbers(cv_run, work):
    out = work / "report.html"
    assert cli.main(["report", str(cv_run), "-o", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    parser = _Sections()
    parser.feed(html)
    for section in (
        "scores",
        "per-target",
        "calibration",
        "weights",
        "learning-curves",
    ):
        assert section in parser.ids
    summary = json.loads((cv_run / "cv_summary.json").read_text())
    assert float(parser.text["oof-score"]) == pytest.approx(summary["score"], abs=1e-6)
    folds = parser.cells["fold-scores"][1:-1]
    assert parser.cells["fold-scores"][-1][0] == "all"
    assert float(parser.cells["fold-scores"][-1][2]) == pytest.approx(
        summary["score"], abs=1e-6
    )
    assert [float(r[2]) for r in folds] == pytest.approx(
        summary["fold_scores"], abs=1e-6
    )
    # the logistic baseline's column, next to the prior's
    header = parser.cells["fold-scores"][0]
    column = header.index("logistic")
    assert header[column + 1] == "prior"
    assert float(parser.cells["fold-scores"][-1][column]) == pytest.approx(
        summary["baseline_score"], abs=1e-6
    )
    weights = parser.cells["weights-table"][1:]
    assert [float(x) for x in weights[0][1:]] == pytest.approx(
        list(summary["weights"][0].values()), abs=1e-4
    )
    assert html.count("<svg") >= 4 and "<polyline" in html
    # calibration bins: the row counts add up to every OOF prediction
    n = sum(int(r[1]) for r in parser.cells["calibration-table"][1:])
    assert n == 300 * 6


def _drugs_on_both_sides(cvdir, groups, n_folds=2):
    shared = set()
    for k in range(n_folds):
        with np.load(cvdir / f"fold_{k}.npz") as f:
            test = np.zeros(len(groups), dtype=bool)
            test[f["test"]] = True
        shared |= set(groups[test]) & set(groups[~test])
    return shared


def test_cv_protocols_new_compound_by_default_and_kaggle(cv_run, work):
    """The default CV holds every drug out whole (the control vehicle too, so a
    training fold has no control row); --protocol kaggle splits the large
    drugs by row; the report says which protocol it shows."""
    from moa_sklearn.datasets import load_moa

    groups = load_moa(work / "data").groups.to_numpy()
    config = json.loads((cv_run / "config.json").read_text())
    assert config["settings"]["protocol"] == "new-compound"
    assert not _drugs_on_both_sides(cv_run, groups)
    out = work / "report_protocol.html"
    assert cli.main(["report", str(cv_run), "-o", str(out)]) == 0
    assert "Protocol: <b>new-compound</b> (every drug held out whole" in (
        out.read_text()
    )

    kaggle = work / "cv_kaggle"
    # (this run also keeps the blend's inner out-of-fold predictions)
    (work / "cfg_inner.json").write_text(json.dumps(CONFIG | {"save_inner_oof": True}))
    args = cli_args(work, "cv", "cv_kaggle", "--protocol", "kaggle")
    args[args.index(str(work / "cfg.json"))] = str(work / "cfg_inner.json")
    assert cli.main(args) == 0
    sizes = pd.Series(groups).value_counts()
    shared = _drugs_on_both_sides(kaggle, groups)
    assert shared and all(sizes[d] > 18 for d in shared)  # the control vehicle
    cp_type = load_moa(work / "data").data["cp_type"].to_numpy()
    with np.load(kaggle / "fold_0.npz") as f:
        rows, inner = f["inner_rows"], f["inner_oof"]
        assert not np.isin(rows, f["test"]).any()
        assert (cp_type[rows] == "trt_cp").all()  # what the blend was fitted on
        assert inner.shape == (2, len(rows), 6)
        assert ((inner > 0) & (inner < 1)).all()
        # and the refits' predictions on the drugs both held out (one seed)
        held = f["validation_rows"]
        assert 0 < len(held) < len(rows) and np.isin(held, rows).all()
        assert f["validation_oof"].shape == (2, len(held), 6)
    with np.load(cv_run / "fold_0.npz") as f:
        assert "inner_oof" not in f  # off by default
    assert cli.main(["report", str(kaggle), "-o", str(out)]) == 0
    assert "Protocol: <b>kaggle</b> (drugs of at most 18 rows" in out.read_text()


def test_cv_with_weights_on_the_validation_drugs(work):
    from moa_sklearn.datasets import load_moa

    (work / "cfg_val.json").write_text(
        json.dumps(CONFIG | {"save_inner_oof": True, "inner_folds": 2})
    )
    args = cli_args(work, "cv", "cv_val", "--inner-folds", "validation")
    args[args.index(str(work / "cfg.json"))] = str(work / "cfg_val.json")
    assert cli.main(args) == 0
    out = work / "cv_val"
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["inner_folds"] == "validation"
    groups = load_moa(work / "data").groups.to_numpy()
    with np.load(out / "fold_0.npz") as f:
        rows, test = f["inner_rows"], f["test"]
        assert "fold_models" not in f  # no inner CV, no fold models
        assert "validation_oof" not in f  # inner_oof holds them
        train = np.setdiff1d(np.arange(len(groups)), test)
        # whole drugs of the training fold, a tenth of it or so
        assert 0 < len(rows) < len(train) / 2
        assert set(groups[rows]).isdisjoint(groups[np.setdiff1d(train, rows)])
        assert f["inner_oof"].shape == (2, len(rows), 6)
    info = json.loads((out / "fold_0.json").read_text())
    assert abs(sum(info["weights"].values()) - 1) < 1e-9
    report = work / "report_val.html"
    assert cli.main(["report", str(out), "-o", str(report)]) == 0
    assert "twostep" in report.read_text()


def test_report_says_what_produced_it(cv_run, work):
    import hashlib
    import importlib.metadata

    out = work / "report_provenance.html"
    assert cli.main(["report", str(cv_run), "-o", str(out)]) == 0
    parser = _Sections()
    parser.feed(out.read_text())
    assert "provenance" in parser.ids
    rows = {r[0]: r[1] for r in parser.cells["provenance-table"][1:] if len(r) == 2}
    # the settings of the run
    assert rows["setting: folds"] == "2" and rows["setting: seed"] == "0"
    assert json.loads(rows["setting: models"]) == ["twostep", "tabnet"]
    assert json.loads(rows["setting: model_params"])["tabnet"]["max_epochs"] == 3
    # the data: what sha256sum prints for each training file
    for name in ("train_features.csv", "train_targets_scored.csv", "train_drug.csv"):
        digest = hashlib.sha256((work / "data" / name).read_bytes()).hexdigest()
        assert rows[f"data: {name} (SHA-256)"] == digest
    # versions, machine, dates
    assert rows["version: scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert rows["version: torch"] == importlib.metadata.version("torch")
    assert rows["machine: CPU"] and "used of" in rows["machine: cores"]
    assert rows["folds computed"].endswith("(UTC)")
    assert rows["report written"][:4].isdigit()


def test_report_screenshot(cv_run, work, tmp_path):
    """The report as a user sees it: a headless browser renders it."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    report = work / "report_shot.html"
    assert cli.main(["report", str(cv_run), "-o", str(report)]) == 0
    png = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={png}", "--window-size=1200,3000", report.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = (
        int.from_bytes(data[16:20], "big"),
        int.from_bytes(data[20:24], "big"),
    )
    assert (width, height) == (1200, 3000)
    try:
        from PIL import Image
    except ImportError:
        return
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    # text and plots drawn all the way down (not a blank or an error page)
    rows_with_ink = (pixels < 128).any(axis=1)
    assert rows_with_ink[:1000].mean() > 0.2 and rows_with_ink[1000:2000].mean() > 0.2


def test_cv_resumes_without_recomputing_finished_folds(work, monkeypatch, capsys):
    out = work / "resume"
    real_fit_fold = cli._fit_fold
    calls = []

    def interrupted(k, *args):
        calls.append(k)
        if k == 1:
            raise KeyboardInterrupt
        return real_fit_fold(k, *args)

    monkeypatch.setattr(cli, "_fit_fold", interrupted)
    assert cli.main(cli_args(work, "cv", "resume")) == 130
    assert calls == [0, 1]
    assert (out / "fold_0.json").is_file() and not (out / "fold_1.json").exists()
    assert not (out / "cv_summary.json").exists()
    assert not list(out.glob("*.tmp*"))
    stamp = (out / "fold_0.npz").stat().st_mtime_ns, (out / "fold_0.json").read_text()

    calls.clear()
    monkeypatch.setattr(
        cli, "_fit_fold", lambda k, *a: calls.append(k) or real_fit_fold(k, *a)
    )
    assert cli.main(cli_args(work, "cv", "resume")) == 0
    assert calls == [1]
    assert (out / "fold_0.npz").stat().st_mtime_ns == stamp[0]
    assert (out / "fold_0.json").read_text() == stamp[1]
    summary = json.loads((out / "cv_summary.json").read_text())
    assert summary["n_folds"] == 2 and len(summary["fold_scores"]) == 2

    # other settings on the same folder: a clear error, nothing overwritten
    assert cli.main(cli_args(work, "cv", "resume", "--seed", "1")) == 2
    assert (out / "fold_0.json").read_text() == stamp[1]

    # the same settings, but a default of the recipe changed since its folds
    # were fitted (another moa-sklearn): told, not mixed into one score
    config = json.loads((out / "config.json").read_text())
    recipe = config["settings"]["recipe"]
    key = next(k for k in recipe if k.endswith("__max_epochs_finetune"))
    recipe[key] += 1
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert cli.main(cli_args(work, "cv", "resume")) == 2
    err = capsys.readouterr().err
    assert "differing: recipe; the recipe's parameters differ" in err
    assert key in err and "Traceback" not in err
    del config["settings"]["recipe"]  # a run from before they were recorded
    (out / "config.json").write_text(json.dumps(config))
    assert cli.main(cli_args(work, "cv", "resume")) == 2
    assert "(the run did not record them)" in capsys.readouterr().err
    assert (out / "fold_0.json").read_text() == stamp[1]


def error_of(capsys, argv):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("moa-sklearn: error: ") and "Traceback" not in err
    return err


def test_clear_errors(work, tmp_path, capsys):
    cfg = str(work / "cfg.json")
    err = error_of(capsys, ["cv", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert "does not exist" in err
    assert not (tmp_path / "o").exists()  # no output folder for a wrong input
    err = error_of(capsys, ["fit", str(tmp_path / "nope"), "-o", str(tmp_path / "m")])
    assert "does not exist" in err

    # a missing file of the layout
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("train_features.csv", "train_targets_scored.csv"):
        (partial / name).write_bytes((work / "data" / name).read_bytes())
    err = error_of(
        capsys, ["cv", str(partial), "-o", str(tmp_path / "o"), "--config", cfg]
    )
    assert "train_targets_nonscored.csv" in err

    # model files that are not one
    err = error_of(
        capsys, ["predict", str(tmp_path / "none.joblib"), str(work / "data")]
    )
    assert "does not exist" in err
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(np.random.RandomState(0).bytes(2000))
    err = error_of(capsys, ["predict", str(bad), str(work / "data")])
    assert "not a moa-sklearn model file" in err
    import joblib

    other = tmp_path / "other.joblib"
    joblib.dump({"a": 1}, other)
    err = error_of(capsys, ["predict", str(other), str(work / "data")])
    assert "not a moa-sklearn model file" in err

    # a config file with an unknown key
    bad_cfg = tmp_path / "cfg.json"
    bad_cfg.write_text(json.dumps({"epochs": 3}))
    err = error_of(
        capsys,
        ["cv", str(work / "data"), "-o", str(tmp_path / "o"), "--config", str(bad_cfg)],
    )
    assert "unknown key" in err and "epochs" in err

    # report of a folder without a CV run; a report that is not HTML
    err = error_of(capsys, ["report", str(tmp_path / "nope")])
    assert "does not exist" in err
    err = error_of(capsys, ["report", str(work / "data"), "-o", "r.png"])
    assert "does not exist" in err  # no config.json: not a CV folder


def test_report_must_be_html(cv_run, tmp_path, capsys):
    err = error_of(capsys, ["report", str(cv_run), "-o", str(tmp_path / "r.png")])
    assert "html" in err
    assert not (tmp_path / "r.png").exists()


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")

    def write(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cli._atomic_write(path, write)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_predict_rejects_a_test_file_with_other_columns(work, cv_run, tmp_path, capsys):
    model = work / "model.joblib"
    if not model.is_file():
        assert cli.main(cli_args(work, "fit", "model.joblib")) == 0
    test = pd.read_csv(work / "data" / "test_features.csv")
    folder = tmp_path / "other"
    folder.mkdir()
    test.drop(columns=["g-3"]).rename(columns={"c-0": "x"}).to_csv(
        folder / "test_features.csv", index=False
    )
    out = tmp_path / "sub.csv"
    err = error_of(capsys, ["predict", str(model), str(folder), "-o", str(out)])
    assert "test_features.csv" in err and "columns" in err
    assert not out.exists()

    # a feature file given directly, with the right columns, is predicted
    test.to_csv(folder / "features.csv", index=False)
    assert (
        cli.main(["predict", str(model), str(folder / "features.csv"), "-o", str(out)])
        == 0
    )
    assert pd.read_csv(out).shape == (60, 7)


def test_module_runs_as_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "moa_sklearn.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for command in ("make-data", "cv", "fit", "predict", "report"):
        assert command in result.stdout


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    found = entry_points(group="console_scripts", name="moa-sklearn")
    if not found:
        pytest.skip("the package was installed before [project.scripts] existed")
    (script,) = found
    assert script.value == "moa_sklearn.cli:main"
    assert script.load() is cli.main


def test_ctrl_c_in_a_net_exits_130_and_records_nothing(work, ctrl_c_at_epoch, capsys):
    """A real SIGINT inside the two-step net's training (skorch would swallow
    it): cv exits 130 without recording the fold, fit without a model file."""
    from moa_sklearn.neural import _torch as torch_engine

    ctrl_c_at_epoch(
        torch_engine._EpochHook, lambda cb, net, **kw: len(net.history), at=2
    )
    out = work / "interrupted"
    assert cli.main(cli_args(work, "cv", "interrupted")) == 130
    err = capsys.readouterr().err
    assert "interrupted; finished folds are saved" in err and "resume" in err
    assert "Traceback" not in err
    assert not list(out.glob("fold_*")) and not list(out.glob("*.tmp*"))
    assert not (out / "cv_summary.json").exists()
    assert cli.main(cli_args(work, "fit", "interrupted.joblib")) == 130
    assert "interrupted; no output was written" in capsys.readouterr().err
    assert not list(work.glob("interrupted.joblib*"))


@pytest.fixture(scope="module")
def model_file(work):
    model = work / "model.joblib"
    if not model.is_file():
        assert cli.main(cli_args(work, "fit", "model.joblib")) == 0
    return model


def test_unwritable_outputs_are_refused_before_any_work(
    work, cv_run, model_file, tmp_path, capsys, monkeypatch
):
    """Every output location is checked first: a file where a folder is
    expected, a folder where a file is expected, a folder under a file."""

    def no_work(*args, **kwargs):  # pragma: no cover - fails the test if reached
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(cli, "_load", no_work)
    monkeypatch.setattr(cli, "_load_pipeline", no_work)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    data = str(work / "data")
    cfg = ["--config", str(work / "cfg.json")]
    cases = [
        (["cv", data, "-o", str(a_file), *cfg], "is not a folder"),
        (["cv", data, "-o", str(a_file / "cv"), *cfg], "cannot be written"),
        (["fit", data, "-o", str(tmp_path), *cfg], "is a folder"),
        (["fit", data, "-o", str(a_file / "m.joblib"), *cfg], "is a file, not a"),
        (["predict", str(model_file), data, "-o", str(tmp_path)], "is a folder"),
        (["predict", str(model_file), data, "-o", str(a_file / "s.csv")], "a file"),
        (["report", str(cv_run), "-o", str(a_file / "r.html")], "is a file, not a"),
        (["make-data", str(a_file), *MAKE], "is not a folder"),
    ]
    for argv, match in cases:
        err = error_of(capsys, argv)
        assert match in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert a_file.read_text() == "x"


def test_missing_output_folders_are_created(work, model_file, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "submission.csv"
    argv = ["predict", str(model_file), str(work / "data"), "-o", str(out)]
    assert cli.main(argv) == 0
    assert pd.read_csv(out).shape == (60, 7)


def test_an_os_error_while_writing_is_a_one_line_error(
    work, model_file, tmp_path, capsys, monkeypatch
):
    """E.g. a full disk: 'moa-sklearn: error: cannot write ...', exit 2, no
    traceback and no temporary file left."""
    import errno
    import os

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cli.os, "fsync", disk_full)
    out = tmp_path / "sub.csv"
    argv = ["predict", str(model_file), str(work / "data"), "-o", str(out)]
    err = error_of(capsys, argv)
    assert "cannot write" in err and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_model(work, model_file, tmp_path, capsys):
    import joblib

    data = str(work / "data")
    for name, content in [
        ("random.joblib", np.random.RandomState(0).bytes(2000)),
        ("empty.joblib", b""),
        ("text.joblib", b"moa-sklearn-model 1\nnot json\n"),
        ("cut.joblib", model_file.read_bytes()[:3000]),  # header, half a pickle
    ]:
        (tmp_path / name).write_bytes(content)
    joblib.dump({"a": 1}, tmp_path / "other.joblib")
    joblib.dump(np.arange(200), tmp_path / "array.joblib")
    for path in sorted(tmp_path.iterdir()):
        err = error_of(capsys, ["predict", str(path), data, "-o", str(tmp_path / "s")])
        assert "is not a moa-sklearn model file (or it was written by an " in err
        assert "incompatible version" in err
        assert "KeyError" not in err and "Error:" not in err, err
    assert not (tmp_path / "s").exists()


def test_predict_checks_the_test_file_before_unpickling_the_model(
    work, model_file, tmp_path, capsys, monkeypatch
):
    def no_unpickling(path):  # pragma: no cover - fails the test if reached
        raise AssertionError("the model was unpickled before the checks")

    monkeypatch.setattr(cli, "_load_pipeline", no_unpickling)
    test = pd.read_csv(work / "data" / "test_features.csv")
    folder = tmp_path / "other"
    folder.mkdir()
    test.drop(columns=["c-1"]).to_csv(folder / "test_features.csv", index=False)
    err = error_of(capsys, ["predict", str(model_file), str(folder)])
    assert "missing ['c-1']" in err
    # a header-only test file: the file has no rows
    test.iloc[:0].to_csv(folder / "test_features.csv", index=False)
    err = error_of(capsys, ["predict", str(model_file), str(folder)])
    assert "test_features.csv: the file has no rows" in err
    # a header-only features file given directly
    test.iloc[:0].to_csv(folder / "features.csv", index=False)
    err = error_of(capsys, ["predict", str(model_file), str(folder / "features.csv")])
    assert "features.csv: the file has no rows" in err


@pytest.mark.parametrize("name", _KAGGLE_FILES)
def test_header_only_data_file(work, tmp_path, capsys, name):
    folder = tmp_path / "data"
    folder.mkdir()
    for f in (work / "data").glob("*.csv"):
        (folder / f.name).write_bytes(f.read_bytes())
    header = (folder / name).read_text().splitlines()[0]
    (folder / name).write_text(header + "\n")
    argv = ["cv", str(folder), "-o", str(tmp_path / "cv"), "--config"]
    err = error_of(capsys, [*argv, str(work / "cfg.json")])
    assert f"{name}: the file has no rows" in err


def test_make_data_on_a_full_disk(tmp_path, capsys, monkeypatch):
    import errno
    import os

    def disk_full(self, path, **kwargs):
        with open(path, "w") as f:
            f.write("sig_id,half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    err = error_of(capsys, ["make-data", str(tmp_path / "d"), *MAKE])
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]


# ------------------------------------------------------------ option checks


def run_args(work, command, out, *extra, config=None):
    """Like cli_args, with any output path and config file."""
    config = config or work / "cfg.json"
    return [
        command,
        str(work / "data"),
        "-o",
        str(out),
        "--config",
        str(config),
        *extra,
    ]


def test_a_bad_option_writes_nothing(work, tmp_path, capsys):
    out = tmp_path / "cv"
    err = error_of(capsys, run_args(work, "cv", out, "--models", "kears"))
    assert "unknown model(s) ['kears']" in err and "twostep, keras, tabnet" in err
    assert not out.exists()  # so a corrected rerun is not "another run"
    cfg = tmp_path / "bad.json"
    for bad, words in [
        ({"folds": 1}, "folds must be an int >= 2"),
        ({"inner_folds": 0}, "inner_folds must be an int >= 2 or 'validation'"),
        ({"inner_folds": "holdout"}, "inner_folds must be an int >= 2"),
        ({"profile": "fast"}, "profile must be one of quick, full"),
        ({"model_params": {"twostep": {"hidden_size": 3}}}, "hidden_size"),
        ({"model_params": {"tabnet": {"n_d": -1}}}, "model_params['tabnet']"),
        ({"model_params": {"xgb": {}}}, "unknown model(s) ['xgb']"),
        ({"protocol": "row-wise"}, "protocol must be new-compound or kaggle"),
        ({"n_jobs": 0}, "n_jobs must be a non-zero int or 'auto'"),
        ({"n_jobs": "all"}, "n_jobs must be a non-zero int or 'auto'"),
        ({"feature_params": {"n_pca": 3}}, "n_pca"),
    ]:
        cfg.write_text(json.dumps({**CONFIG, **bad}))
        err = error_of(capsys, run_args(work, "cv", out, config=cfg))
        assert words in err, (bad, err)
        assert not out.exists()
    model = tmp_path / "model.joblib"
    err = error_of(capsys, run_args(work, "fit", model, config=cfg))
    assert "n_pca" in err and not model.exists()


def test_models_take_a_comma_separated_or_repeated_value():
    parse = cli._parser().parse_args
    args = parse(["cv", "--models", "keras,tabnet", "moa-data", "-o", "X"])
    assert args.models == ["keras", "tabnet"]
    assert (args.folder, args.output) == ("moa-data", "X")
    args = parse(["fit", "--models", "keras", "--models", "twostep", "d", "-o", "m"])
    assert args.models == ["keras", "twostep"]
    args = parse(["cv", "d", "-o", "X", "--models", "auto"])
    assert cli._settings(args)["models"] == "auto"
    assert cli._settings(parse(["cv", "d", "-o", "X"]))["verbose"] == 1
    assert parse(["cv", "d", "-o", "X", "-q"]).verbose == 0
    assert parse(["cv", "d", "-o", "X", "-v"]).verbose == 2


@pytest.mark.parametrize(
    "argv, profile, n_jobs",
    [
        ([], "quick", None),  # auto: the quick profile in this process
        (["--profile", "full"], "full", -1),  # auto: every core
        (["--profile", "full", "--n-jobs", "1"], "full", 1),
        (["--n-jobs", "2"], "quick", 2),
        (["--n-jobs", "auto"], "quick", None),
    ],
)
def test_n_jobs_auto_is_every_core_for_the_full_profile(argv, profile, n_jobs):
    import sklearn

    args = cli._parser().parse_args(["fit", "d", "-o", "m", *argv])
    settings = cli._settings(args)
    assert settings["profile"] == profile
    assert cli._n_jobs(settings) == n_jobs
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = cli._build_pipeline(settings, ["twostep"])
    assert pipe.get_params()["estimator__model__n_jobs"] == n_jobs


def test_n_jobs_flag_rejects_a_word(capsys):
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["fit", "d", "-o", "m", "--n-jobs", "many"])
    assert "an int or 'auto', not 'many'" in capsys.readouterr().err


def test_a_missing_engine_is_one_message_and_nothing_written(
    work, tmp_path, capsys, monkeypatch
):
    from moa_sklearn import recipes

    out = tmp_path / "cv"
    monkeypatch.setattr(recipes, "_installed", lambda name: name != "keras")
    err = error_of(capsys, run_args(work, "cv", out, "--models", "keras,twostep"))
    assert 'pip install "moa-sklearn[keras]"' in err
    monkeypatch.setattr(recipes, "_installed", lambda name: False)  # core only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        err = error_of(capsys, run_args(work, "cv", out, "--models", "auto"))
    assert err.count("\n") == 1 and err.count("pip install") == 1, err
    assert "no model can run" in err
    assert not out.exists()


def test_help_texts_say_what_and_the_defaults(capsys):
    def help_of(*argv):
        with pytest.raises(SystemExit) as e:
            cli.main([*argv, "--help"])
        assert e.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    text = help_of("make-data")
    assert "lish-moa's full size" in text
    for flag, default in [("--n-samples", 23814), ("--n-test", 3982), ("--seed", 0)]:
        assert f"(default: {default})" in text.split(flag, 2)[2], flag
    assert "training rows" in text and "scored targets" in text
    text = help_of("predict")
    assert "default: submission.csv" in text
    for command in ("cv", "fit"):
        text = help_of(command)
        assert "comma-separated" in text and "-q, --quiet" in text
        assert "progress bars" in text


# ---------------------------------------------------------------- progress


def test_progress_bars_on_a_terminal_lines_in_a_log(
    work, tmp_path, capsys, terminal, progress_bars
):
    # not a terminal (captured): the per-fold lines, no bar
    assert cli.main(run_args(work, "cv", tmp_path / "cv")) == 0
    err = capsys.readouterr().err
    assert "fold 1/2: fitting" in err and "fold 2/2: log loss" in err
    assert "\r" not in err
    assert progress_bars and not any(b.drawn for b in progress_bars)
    # a terminal: bars of the folds, of the blend's fits and of the epochs
    progress_bars.clear()
    stream = terminal()
    assert cli.main(run_args(work, "fit", tmp_path / "m.joblib")) == 0
    drawn = {b.desc: b for b in progress_bars if b.drawn}
    nets = {"TwoStepNetClassifier", "TabNetMultilabelClassifier"}
    assert {"StackingBlend", *nets} <= set(drawn)
    blend = drawn["StackingBlend"]
    assert blend.n == blend.total == 2 * (2 + 1)  # 2 models x (2 inner folds + all)
    assert "StackingBlend" in stream.getvalue() and "\r" in stream.getvalue()
    # -q: no bar, even on a terminal
    progress_bars.clear()
    assert cli.main(run_args(work, "fit", tmp_path / "m.joblib", "-q")) == 0
    assert not any(b.drawn for b in progress_bars)
