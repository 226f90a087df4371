"""The benchmark suite runs end to end, and the docs show what its files hold.

The figures themselves come from the full-size run documented in
docs/benchmarks.md; here the suite runs at a tiny size (``--smoke``) so that
a change that breaks a benchmark is caught. Nothing here is timed.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"

pytest.importorskip("matplotlib")
pytest.importorskip("torch")
pytest.importorskip("keras")


def run_script(script, *args, **env):
    """Run a script of benchmarks/ from the repository root (output captured)."""
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def bench_module(name):
    """A module of benchmarks/, imported as the scripts import each other."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def run_all():
    yield from bench_module("run_all")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    only = ("--only", "quality", "speed", "scaling")
    proc = run_script(
        "run_all.py",
        *("--smoke", *only, "--threads", "1", "--outdir", str(out)),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    assert_ok(proc)
    return out


@pytest.mark.parametrize("name", ["quality", "speed", "scaling"])
def test_each_benchmark_writes_results_machine_command_and_plot(smoke, name):
    payload = json.loads((smoke / f"{name}.json").read_text())
    assert payload["benchmark"] == name
    assert payload["command"].startswith("python benchmarks/")
    machine = payload["machine"]
    assert machine["logical_cores"] >= 1
    assert machine["versions"]["scikit-learn"]
    assert machine["versions"]["torch"]
    png = (smoke / f"{name}.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_quality_scores_every_model_on_the_same_rows_under_both_protocols(smoke):
    r = json.loads((smoke / "quality.json").read_text())["results"]
    assert set(r["protocols"]) == {"new-compound", "kaggle"}
    for protocol, p in r["protocols"].items():
        table = p["table"]
        assert set(table) == {
            "constant prior",
            "logistic regression on RankGauss + PCA(100)",
            "plain public recipe's net",
            "TwoStepNetClassifier",
            "KerasNetClassifier",
            "TabNetMultilabelClassifier",
            # the recipe's weights, chosen on the refits' validation drugs
            # (cv="validation"), and the blend that ran: weights on the
            # smoke run's 2-fold inner CV (--inner-folds 2); the bound of
            # weights fitted on the test fold
            "StackingBlend (the recipe)",
            "StackingBlend, weights on a 2-fold inner CV",
            "StackingBlend, weights fitted on the test fold (a bound)",
            "Bayes optimum",
            # the same fits predicting with their inner-fold models
            "StackingBlend, weights on a 2-fold inner CV, fold models",
            "TwoStepNetClassifier, fold models",
            "KerasNetClassifier, fold models",
            "TabNetMultilabelClassifier, fold models",
            # the learned second stage and per-target weights, on the inner
            # out-of-fold predictions
            "StackingBlend, per-target second stage",
            "StackingBlend, per-target weights",
            "StackingBlend, per-target second stage, fold models",
            # the blend of the other nets, weighted on the same inner
            # out-of-fold predictions
            "StackingBlend without twostep",
            "StackingBlend without keras",
            "StackingBlend without tabnet",
        }
        prior, bayes = table["constant prior"]["loss"], table["Bayes optimum"]["loss"]
        assert bayes < prior
        for row in table.values():
            assert np.isfinite(row["loss"])
            assert row["gap_closed"] == pytest.approx(
                (prior - row["loss"]) / (prior - bayes)
            )
        assert len(p["fold_fit_seconds"]) == 2
        blend = table["StackingBlend (the recipe)"]["loss"]
        assert p["blend_beats_best_net"] == (blend < table[p["best_net"]]["loss"])
        # weights fitted on the test fold: no blend of the same nets does better
        bound = table["StackingBlend, weights fitted on the test fold (a bound)"]
        assert bound["loss"] <= blend * (1 + 1e-6)
        inner = table["StackingBlend, weights on a 2-fold inner CV"]["loss"]
        assert bound["loss"] <= inner * (1 + 1e-6)
        assert p["blend_cv"] == 2 and len(p["blend_weights"]) == 2
        for w in p["blend_weights"]:
            assert abs(sum(w.values()) - 1) < 1e-9
        expected = "None" if protocol == "new-compound" else "18"
        assert f"max_drug_size={expected}" in p["cv"]
    # the protocols split differently, so the same model scores differently
    a, b = (p["table"]["TwoStepNetClassifier"] for p in r["protocols"].values())
    assert a["loss"] != b["loss"]


def test_quality_resumes_the_blend_cv(smoke, capsys):
    """A second run reuses the finished folds of the blend's CV, and a run of
    one protocol keeps the other's table from the file it replaces."""
    (smoke / "again").mkdir()
    (smoke / "again" / "quality.json").write_text((smoke / "quality.json").read_text())
    proc = run_script(
        "bench_quality.py",
        *("--small", "--folds", "2", "--epochs", "2", "--threads", "1"),
        *("--inner-folds", "2", "--protocols", "kaggle", "--skip-baselines"),
        *("--workdir", str(smoke / "work"), "--outdir", str(smoke / "again")),
    )
    assert_ok(proc)
    assert proc.stderr.count("loaded") == 2  # both folds read back
    first = json.loads((smoke / "quality.json").read_text())["results"]
    again = json.loads((smoke / "again" / "quality.json").read_text())["results"]
    assert list(again["protocols"]) == ["new-compound", "kaggle"]
    kept = again["protocols"]["new-compound"]
    assert kept["table"] == first["protocols"]["new-compound"]["table"]
    assert "--protocols" not in kept["command"]
    assert "--protocols kaggle" in again["protocols"]["kaggle"]["command"]
    first, again = first["protocols"]["kaggle"], again["protocols"]["kaggle"]
    for name in ("StackingBlend (the recipe)", "KerasNetClassifier", "Bayes optimum"):
        assert again["table"][name]["loss"] == first["table"][name]["loss"]
    # --skip-baselines: the baselines' rows of the same folds are borrowed
    # from the file it replaces, which says where they come from
    label = "plain public recipe's net"
    assert again["table"][label] == first["table"][label]
    assert again["baselines_from"] == {
        "command": first["command"],
        "date": first["date"],
    }


@pytest.fixture(scope="module")
def bench_quality():
    yield from bench_module("bench_quality")


def test_quality_keeps_no_protocol_measured_on_another_world(
    bench_quality, tmp_path, capsys
):
    shared = dict(world={"signal": 1.3}, rows=10, folds=3, inner_folds=2)
    shared.update(epochs={"keras": None}, metric="loss")
    old = dict(shared, protocols={"new-compound": {"table": {}}})
    payload = dict(command="python old", machine={"date": "2026"}, results=old)
    (tmp_path / "quality.json").write_text(json.dumps(payload))
    new = dict(shared, world={"signal": 1.5}, protocols={"kaggle": {}})
    bench_quality.keep_other_protocols(new, tmp_path)
    assert list(new["protocols"]) == ["kaggle"]
    assert "world differ" in capsys.readouterr().out
    # another blend cv is not another world: each table records its own
    new = dict(shared, inner_folds="validation", protocols={"kaggle": {}})
    bench_quality.keep_other_protocols(new, tmp_path)
    assert list(new["protocols"]) == ["new-compound", "kaggle"]
    assert new["protocols"]["new-compound"]["command"] == "python old"
    assert new["protocols"]["new-compound"]["inner_folds"] == 2


def test_quality_marks_a_kept_protocol_measured_at_other_defaults(
    bench_quality, run_all, tmp_path, capsys
):
    """A protocol's table kept from an earlier run says which of the nets'
    defaults changed since, and the rendered docs say so under it."""
    defaults = bench_quality.net_defaults()
    assert defaults["twostep"]["hidden_sizes"] == [2048, 2048]
    assert "device" not in defaults["keras"]
    earlier = json.loads(json.dumps(defaults))
    earlier["twostep"]["hidden_sizes"] = [1500, 1250, 1000, 750]
    smoke = json.loads(
        (ROOT / "docs" / "bench" / "quality.json").read_text()
    )  # a real payload, for the rendering
    results = smoke["results"]
    kept = results["protocols"]["kaggle"]
    kept["net_defaults"] = earlier
    kept["recipe_blend_cv"] = bench_quality.recipe_inner_cv()
    new = {k: v for k, v in results.items() if k != "protocols"}
    fresh = dict(results["protocols"]["new-compound"], net_defaults=defaults)
    fresh.pop("defaults_changed_since", None)  # a run at the installed defaults
    new["protocols"] = {"new-compound": fresh}
    (tmp_path / "quality.json").write_text(json.dumps(smoke))
    bench_quality.keep_other_protocols(new, tmp_path)
    marked = new["protocols"]["kaggle"]["defaults_changed_since"]
    assert marked == ("twostep hidden_sizes: [1500, 1250, 1000, 750] -> [2048, 2048]")
    assert "measured at other defaults" in capsys.readouterr().out
    text = "\n".join(run_all._quality(dict(smoke, results=new), "q.png"))
    assert text.count("Measured at earlier defaults") == 1
    assert "hidden_sizes: [1500, 1250, 1000, 750] -> [2048, 2048]" in text
    # the same defaults: nothing to say
    kept["net_defaults"] = defaults
    (tmp_path / "quality.json").write_text(json.dumps(smoke))
    new["protocols"].pop("kaggle")
    bench_quality.keep_other_protocols(new, tmp_path)
    assert "defaults_changed_since" not in new["protocols"]["kaggle"]
    # a table measured before the recipe chose its blend weights on the
    # nets' validation drugs (no recipe_blend_cv: a 2-fold inner CV)
    del kept["recipe_blend_cv"]
    (tmp_path / "quality.json").write_text(json.dumps(smoke))
    new["protocols"].pop("kaggle")
    bench_quality.keep_other_protocols(new, tmp_path)
    marked = new["protocols"]["kaggle"]["defaults_changed_since"]
    assert marked == "blend cv: 2 -> 'validation'"


def test_quality_records_and_names_the_recipes_settings(bench_quality, run_all):
    """The quality table measures the nets as the recipe sets them: the
    recorded settings are the recipe's, and a row of a net whose recipe
    setting is not its class default names that setting."""
    from moa_sklearn.neural import TabNetMultilabelClassifier

    settings = bench_quality.net_defaults()
    assert settings["tabnet"]["n_seeds"] == 1 != TabNetMultilabelClassifier().n_seeds
    assert bench_quality.recipe_overrides() == [
        "tabnet average_epochs='weights'",
        "tabnet n_seeds=1",
    ]
    shown = run_all._shown_name
    over = ["tabnet n_seeds=1"]
    assert shown("TabNetMultilabelClassifier", over) == (
        "TabNetMultilabelClassifier (n_seeds=1)"
    )
    assert shown("TabNetMultilabelClassifier, fold models", over) == (
        "TabNetMultilabelClassifier (n_seeds=1), fold models"
    )
    for name in ("KerasNetClassifier", "StackingBlend without tabnet"):
        assert shown(name, over) == name
    assert shown("TabNetMultilabelClassifier", None) == "TabNetMultilabelClassifier"


def test_mark_stale_marks_the_tables_measured_at_other_defaults_only(
    bench_quality, tmp_path, capsys
):
    """--mark-stale, without a run: a table measured at other defaults of the
    nets says which changed; one at the installed defaults says nothing."""
    defaults = bench_quality.net_defaults()
    earlier = json.loads(json.dumps(defaults))
    earlier["tabnet"]["n_seeds"] = 7
    committed = json.loads((ROOT / "docs" / "bench" / "quality.json").read_text())
    protocols = committed["results"]["protocols"]
    protocols["new-compound"]["net_defaults"] = earlier
    protocols["kaggle"]["net_defaults"] = defaults
    protocols["kaggle"]["defaults_changed_since"] = "an old mark"
    for p in protocols.values():  # measured at the recipe's blend cv
        p["recipe_blend_cv"] = bench_quality.recipe_inner_cv()
    (tmp_path / "quality.json").write_text(json.dumps(committed))
    bench_quality.mark_stale(tmp_path)
    marked = json.loads((tmp_path / "quality.json").read_text())["results"]
    now = defaults["tabnet"]["n_seeds"]
    assert marked["protocols"]["new-compound"]["defaults_changed_since"] == (
        f"tabnet n_seeds: 7 -> {now}"
    )
    assert "defaults_changed_since" not in marked["protocols"]["kaggle"]
    assert marked["protocols"]["kaggle"]["table"] == protocols["kaggle"]["table"]
    assert "measured at other defaults" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="nothing to mark"):
        bench_quality.mark_stale(tmp_path / "empty")


def test_committed_quality_tables_are_marked_against_the_installed_defaults(
    bench_quality,
):
    """A default changed without a rerun leaves its tables marked "to be
    rerun" (``bench_quality.py --mark-stale``), never silently out of date."""
    committed = json.loads((ROOT / "docs" / "bench" / "quality.json").read_text())
    defaults = bench_quality.net_defaults()
    for name, table in committed["results"]["protocols"].items():
        changed = bench_quality.what_changed(table, defaults)
        assert table.get("defaults_changed_since", "") == changed, name


def test_quality_borrows_the_baselines_of_the_same_folds(
    bench_quality, run_all, tmp_path, capsys
):
    """--skip-baselines: the baselines' rows come from the quality.json of
    the same world and folds, and the rendered table says where from."""
    committed = json.loads((ROOT / "docs" / "bench" / "quality.json").read_text())
    results = committed["results"]
    before = results["protocols"]["new-compound"]
    new = {k: v for k, v in results.items() if k != "protocols"}
    without = {"constant prior": before["table"]["constant prior"]}
    new["protocols"] = {"new-compound": dict(before, table=without)}
    new["protocols"]["new-compound"].pop("baselines_from", None)
    (tmp_path / "quality.json").write_text(json.dumps(committed))
    bench_quality.borrow_baselines(new, tmp_path)
    p = new["protocols"]["new-compound"]
    for label in bench_quality.BASELINES.values():
        assert p["table"][label] == before["table"][label]
    origin = before.get("baselines_from") or {"date": before["date"]}
    assert p["baselines_from"]["date"] == origin["date"]
    assert "baselines borrowed" in capsys.readouterr().out
    text = "\n".join(run_all._quality_protocol("new-compound", p))
    assert "| plain public recipe's net\\* |" in text
    assert text.count("fitted by an earlier run on the same world and folds") == 1
    # another world, or other folds: nothing borrowed
    for change in ({"folds": 5}, {"world": {"signal": 9}}):
        other = dict(new, **change)
        other["protocols"] = {"new-compound": dict(before, table=without)}
        bench_quality.borrow_baselines(other, tmp_path)
        assert set(other["protocols"]["new-compound"]["table"]) == set(without)
    assert "no baselines borrowed" in capsys.readouterr().out


def test_scaling_reports_slopes_of_the_measured_sizes(smoke):
    r = json.loads((smoke / "scaling.json").read_text())["results"]
    assert [row["n_samples"] for row in r["sizes"]] == [600, 1200]
    for row in r["sizes"]:
        assert row["fit_seconds"] > 0 and row["predict_seconds"] > 0
        assert row["peak_rss_mib"] >= row["fit_memory_mib"] >= 0
    assert isinstance(r["fit_time_slope"], float)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, run_all):
    """bench_recipe at run_all's smoke size: (outdir, workdir, smoke arguments)."""
    out = tmp_path_factory.mktemp("recipe")
    argv = [a.format(outdir=out) for a in run_all.BENCHMARKS["recipe"][3]]
    proc = run_script(
        "bench_recipe.py", *argv, "--threads", "1", "--outdir", str(out),
        TF_CPP_MIN_LOG_LEVEL="3",
    )  # fmt: skip
    assert_ok(proc)
    return out, out / "recipe_work", argv


def test_recipe_times_the_fit_predict_and_cv_a_user_runs(recipe, run_all, bench_recipe):
    out, work, _ = recipe
    payload = json.loads((out / "recipe.json").read_text())
    r = payload["results"]
    fit, cv = r["fit"], r["cv"]
    # each step records what its nets learned with: current, so not marked
    for step in (fit, cv):
        assert step["net_settings"] == bench_recipe.net_settings(r["settings"])
        assert "settings_changed_since" not in step
    assert fit["net_settings"]["twostep"]["max_epochs_pretrain"] == 1  # --epochs
    # the blend's inner CV as asked, its one net, the test rows scored
    assert fit["inner_folds"] == 2 and list(fit["blend_weights"]) == ["twostep"]
    assert fit["n_test"] == 100 and fit["test_loss"] > fit["test_bayes_loss"] > 0
    assert fit["peak_memory_mib"] == max(
        fit["peak_memory_fit_mib"], fit["peak_memory_predict_mib"]
    )
    # predicted from the model file in a fresh process, as moa-sklearn predict
    assert fit["predict_process"] == "fresh" and fit["peak_memory_predict_mib"] > 0
    assert fit["first_predict_seconds"] > 0 and fit["predict_seconds"] > 0
    assert (work / "model.joblib").stat().st_size > 0
    # the quick profile's auto n_jobs: one process, the nets' own threads
    assert r["settings"]["n_jobs"] == "auto" and fit["n_jobs"] is None
    assert fit["threads_per_fit"] is None
    if importlib.util.find_spec("psutil") is not None:  # main process + workers
        assert (
            fit["peak_memory_fit_tree_rss_mib"] >= fit["peak_memory_fit_tree_mib"] > 0
        )
        assert cv["peak_memory_tree_rss_mib"] >= cv["peak_memory_tree_mib"] > 0
        assert cv["folds_this_run"] == [0, 1]
    assert cv["folds"] == 2 and len(cv["fold_seconds"]) == 2
    assert cv["cv_seconds"] == pytest.approx(sum(cv["fold_seconds"]))
    assert cv["scores"]["score"] < cv["scores"]["prior_score"] * 2
    # only a 5-fold CV is held against the 5-fold target
    assert set(r["targets"]) == {"fit_seconds", "predict_seconds", "peak_memory_mib"}
    for row in r["targets"].values():
        assert row["met"] == (row["value"] <= row["target"])
    text = "\n".join(run_all._recipe(payload))
    assert "| one fit on all rows |" in text and "| predict_proba of" in text
    assert "5-fold CV (the recipe's fits)" not in text
    assert "the CV: 2 folds, new-compound protocol" in text
    assert "in a fresh process, as `moa-sklearn predict` runs" in text
    assert payload["command"].startswith("python benchmarks/bench_recipe.py")


@pytest.fixture(scope="module")
def bench_recipe():
    yield from bench_module("bench_recipe")


def _recipe_record(n_jobs, steps, fit_seconds=600.0, world=None):
    """A recipe.json payload of one run (made up: the merge and the table)."""
    settings = {"profile": "full", "seed": 0}
    if n_jobs != "absent":  # records before n_jobs was recorded: one process
        settings["n_jobs"] = n_jobs
    results = dict(
        world=world or {"n_samples": 23814, "seed": 0},
        settings=settings,
        threads=2,
        bf16_native=False,
    )
    if "fit" in steps:
        results["fit"] = dict(
            fit_seconds=fit_seconds,
            predict_seconds=1.5,
            peak_memory_mib=2000.0,
            peak_memory_fit_mib=2000.0,
            peak_memory_fit_tree_mib=None if n_jobs == "absent" else 5000.0,
            model_file_mib=77.0,
            load_seconds=4.0,
            first_predict_seconds=2.0,
            predict_process="fresh",
            test_loss=0.0172,
            test_bayes_loss=0.0091,
            inner_folds="validation",
            blend_weights={"twostep": 0.7, "keras": 0.3},
            threads_per_fit=1,
        )
    if "cv" in steps:
        results["cv"] = dict(
            folds=5,
            protocol="new-compound",
            cv_seconds=2000.0,
            fold_seconds=[400.0] * 5,
            peak_memory_mib=2500.0,
            peak_memory_tree_mib=5500.0,
            scores=dict(score=0.0164, prior_score=0.0233, bayes_score=0.0094),
        )
    machine = {"cpu": "AMD EPYC", "cpu_flags": ["avx2"], "logical_cores": 2}
    return dict(command=f"python benchmarks/bench_recipe.py {n_jobs} {steps}",
                machine=machine, results=results)  # fmt: skip


def test_recipe_keeps_the_runs_of_other_n_jobs_and_the_steps_not_rerun(
    bench_recipe, run_all
):
    serial = _recipe_record("absent", ["fit"], fit_seconds=800.0)
    auto_fit = _recipe_record("auto", ["fit"])
    # a cv run at n_jobs=auto after a fit run at auto, which came after a
    # serial fit from before n_jobs was recorded
    merged_fit = bench_recipe.merge(serial, auto_fit["results"], serial["machine"])
    assert [r["settings"]["n_jobs"] for r in merged_fit["other_runs"]] == [None]
    payload = dict(auto_fit, results=merged_fit)
    auto_cv = _recipe_record("auto", ["cv"])["results"]
    merged = bench_recipe.merge(payload, auto_cv, serial["machine"])
    assert set(merged) >= {"fit", "cv"}  # the fit kept from the run before
    assert merged["fit"]["bench_command"] == auto_fit["command"]
    assert merged["other_runs"][0]["fit"]["fit_seconds"] == 800.0
    merged["targets"] = bench_recipe.verdicts(merged)
    for run in merged["other_runs"]:
        run["targets"] = bench_recipe.verdicts(run)
    # the workers' memory counts against the target
    assert merged["targets"]["peak_memory_mib"]["value"] == 5500.0
    assert merged["targets"]["fit_seconds"]["met"]
    assert not merged["other_runs"][0]["targets"]["fit_seconds"]["met"]
    text = "\n".join(run_all._recipe(dict(payload, results=merged)))
    header = next(line for line in text.splitlines() if line.startswith("| measure"))
    assert header.index("n_jobs=None: one process") < header.index(
        "n_jobs=-1 (auto, the CLI's default): the blend's fits in parallel, "
        "1 thread(s) per net"
    )
    assert "| one fit on all rows | **13.3 min** (over) | 10.0 min | 12.0 min |" in text
    assert "| 5-fold CV (the recipe's fits) | not run | 33.3 min | 45.0 min |" in text
    assert "with its workers (resident sizes summed) 4.9 GiB" in text
    assert "with its workers (resident sizes summed) 5.4 GiB" in text
    for record in (serial, auto_fit):  # each step's command
        assert record["command"] in text
    # a one-process fit after them keeps the auto run as it was given
    again = _recipe_record(1, ["fit"], fit_seconds=790.0)["results"]
    merged = bench_recipe.merge(dict(payload, results=merged), again, serial["machine"])
    assert [r["settings"]["n_jobs"] for r in merged["other_runs"]] == ["auto"]
    assert set(merged["other_runs"][0]) >= {"fit", "cv"}
    merged["targets"] = bench_recipe.verdicts(merged)
    merged["other_runs"][0]["targets"] = bench_recipe.verdicts(merged["other_runs"][0])
    text = "\n".join(run_all._recipe(dict(payload, results=merged)))
    assert "n_jobs=1: one process |" in text
    assert "n_jobs=-1 (auto, the CLI's default): the blend's fits" in text
    one = next(line for line in text.splitlines() if line.startswith("n_jobs=1"))
    assert "with its workers" not in one  # one process has none
    # another world, machine or settings: nothing kept
    other = _recipe_record("absent", ["fit"], world={"n_samples": 300, "seed": 0})
    assert "other_runs" not in bench_recipe.merge(
        other, _recipe_record("auto", ["cv"])["results"], other["machine"]
    )
    fast = dict(serial["machine"], cpu_flags=["avx512_bf16"])
    assert "fit" not in bench_recipe.merge(
        auto_fit, _recipe_record("auto", ["cv"])["results"], fast
    )


def test_recipe_marks_the_steps_measured_at_other_settings(
    bench_recipe, run_all, tmp_path
):
    """--mark-stale: a step whose nets learned with other settings than the
    installed package makes of the run's settings is marked, and its figures
    in the table say "to be rerun"; a current step is not."""
    payload = _recipe_record("auto", ["fit", "cv"])
    r = payload["results"]
    now = bench_recipe.net_settings(r["settings"])
    r["fit"]["net_settings"] = now
    r["cv"]["net_settings"] = json.loads(json.dumps(now))
    r["cv"]["net_settings"]["tabnet"]["mixup"] = 0.0
    r["targets"] = bench_recipe.verdicts(r)
    (tmp_path / "recipe.json").write_text(json.dumps(payload))
    bench_recipe.mark_stale(tmp_path)
    marked = json.loads((tmp_path / "recipe.json").read_text())
    fit, cv = marked["results"]["fit"], marked["results"]["cv"]
    assert "settings_changed_since" not in fit
    assert cv["settings_changed_since"] == "tabnet mixup: 0.0 -> 0.5"
    text = "\n".join(run_all._recipe(marked))
    assert "| one fit on all rows | 10.0 min |" in text
    assert "| 5-fold CV (the recipe's fits) | 33.3 min\u00a7 |" in text
    assert "| peak memory | 5.4 GiB\u00a7 |" in text  # the fit's and the cv's
    assert "differ from the installed package's or were not recorded (tabnet " in text
    # a step from before the settings were recorded is marked too
    del r["fit"]["net_settings"]
    (tmp_path / "recipe.json").write_text(json.dumps(payload))
    bench_recipe.mark_stale(tmp_path)
    fit = json.loads((tmp_path / "recipe.json").read_text())["results"]["fit"]
    assert "not recorded" in fit["settings_changed_since"]


def test_committed_recipe_steps_are_marked_against_the_installed_settings(
    bench_recipe,
):
    """A default changed without a rerun leaves the recipe's figures marked
    "to be rerun" (``bench_recipe.py --mark-stale``)."""
    committed = json.loads((ROOT / "docs" / "bench" / "recipe.json").read_text())
    r = committed["results"]
    for run in [r, *r.get("other_runs", [])]:
        for name in ("fit", "cv"):
            if name in run:
                step = dict(run[name])
                marked = step.get("settings_changed_since")
                assert bench_recipe._mark(step, run["settings"]) == (marked or ""), name


def test_recipe_resumes_its_cv_and_reuses_its_world(recipe):
    out, work, argv = recipe
    first = json.loads((out / "recipe.json").read_text())["results"]["cv"]
    stamp = (work / "data.json").stat().st_mtime_ns
    proc = run_script(
        "bench_recipe.py", *argv, "--steps", "cv", "--outdir", str(out / "again"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )  # fmt: skip
    assert_ok(proc)
    again = json.loads((out / "again" / "recipe.json").read_text())["results"]
    assert "fit" not in again
    # the folds are read back, not refitted: the same recorded fit times
    assert again["cv"]["fold_seconds"] == first["fold_seconds"]
    assert (work / "data.json").stat().st_mtime_ns == stamp


def test_speed_measures_every_net_against_the_kaggle_loop(smoke):
    payload = json.loads((smoke / "speed.json").read_text())
    r, native = payload["results"], payload["machine"]["bf16_native"]
    methods = r["methods"]
    assert set(methods) == {"kaggle", "twostep-fp32", "twostep-bf16", "keras", "tabnet"}
    assert methods["kaggle"]["speedup_vs_kaggle"] == pytest.approx(1.0)
    for name, row in methods.items():
        if name == "twostep-bf16" and not native:  # reported, not failed
            assert "no native bf16" in row["unavailable"]
            continue
        assert row["epoch_seconds"] > 0 and row["gflops"] > 0
    assert r["matmul_peak_gflops"]["fp32"] > 0
    assert (r["matmul_peak_gflops"]["bf16"] is None) == (not native)


@pytest.fixture(scope="module")
def nets_helpers():
    yield from bench_module("_nets")


@pytest.fixture(scope="module")
def common():
    yield from bench_module("_common")


def test_every_net_runs_on_the_threads_the_benchmark_is_given(nets_helpers, common):
    """--threads reaches every net, Keras included (TensorFlow's pools
    otherwise take every core: a one-thread figure would use two)."""
    from argparse import Namespace

    for name in ("twostep", "keras", "tabnet"):
        args = Namespace(seed=0, threads=1, epochs=2, small=True)
        assert nets_helpers.make_net(name, args).n_threads == 1
        assert common.net_params(epochs=2, threads=1)[name]["n_threads"] == 1
    assert all("n_threads" not in p for p in common.net_params(epochs=2).values())


def test_speed_reports_bf16_unavailable_on_a_cpu_without_it(tmp_path, run_all):
    """On a CPU without native bf16 the bf16 row is "unavailable", not a failure."""
    proc = run_script(
        "bench_speed.py",
        *("--n-samples", "300", "--n-features", "20", "--n-targets", "4"),
        *("--epochs", "1", "--small", "--threads", "1"),
        *("--methods", "kaggle", "twostep-bf16", "--outdir", str(tmp_path)),
        MOA_SKLEARN_NO_BF16="1",
    )
    assert_ok(proc)
    assert "twostep-bf16: unavailable" in proc.stdout
    payload = json.loads((tmp_path / "speed.json").read_text())
    assert payload["machine"]["bf16_native"] is False
    assert payload["machine"]["cpu_flags"] == run_all._common.cpu_flags()
    r = payload["results"]
    assert r["matmul_peak_gflops"]["bf16"] is None
    assert r["methods"]["kaggle"]["epoch_seconds"] > 0
    text = "\n".join(run_all._speed(payload, "speed.png"))
    assert "| twostep-bf16 | bf16 | unavailable: no native bf16" in text
    assert "bf16 unavailable (not native here)" in text
    assert "bf16 not native" in run_all._machine_line(payload)


def test_rendered_tables_name_every_model(smoke, run_all):
    text = (smoke / "results.md").read_text()
    assert text.count("| **StackingBlend (the recipe)** |") == 2  # two protocols
    assert "*new-compound* (`DrugMultilabelStratifiedKFold(max_drug_size=None" in text
    assert "| plain public recipe's net |" in text
    # the quality issue's verdict: which nets beat both plain baselines
    assert text.count("Nets ahead of both plain baselines:") == 2
    assert text.count("peak memory of the CV process") == 2
    assert text.count("Predicting with the mean of the inner-fold models") == 2
    assert text.count("The blend of the other nets, its weights chosen again") == 2
    assert text.count("The learned second stage (`final_estimator='per_target'`") == 2
    assert "![seconds per epoch](bench/speed.png)" in text
    assert "python benchmarks/bench_pipeline.py" in text


def test_docs_page_holds_the_tables_of_the_committed_results(run_all):
    """docs/benchmarks.md shows exactly what docs/bench/*.json hold."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    region = page.split(run_all.BEGIN, 1)[1].split(run_all.END, 1)[0]
    assert region.strip() == run_all.render(run_all._common.DOCS_BENCH).strip()
    for name in ("quality", "speed", "scaling"):
        assert (ROOT / "docs" / "bench" / f"{name}.png").is_file()


@pytest.mark.parametrize(
    "script",
    sorted(
        str(p.relative_to(BENCH))
        for p in [*BENCH.glob("*.py"), *BENCH.glob("studies/*.py")]
        if not p.name.startswith("_")
    ),
)
def test_every_script_reads_its_arguments(script):
    """Each script (the suite's and the studies') imports what it shares."""
    proc = run_script(script, "--help")
    assert_ok(proc)
    assert proc.stdout.startswith("usage:")


def test_run_all_knows_every_study(run_all):
    studies = {spec[0] for spec in run_all.STUDIES.values()}
    assert studies == {f"studies/{p.name}" for p in BENCH.glob("studies/*.py")}


@pytest.mark.parametrize("model", ["twostep", "keras", "tabnet"])
def test_run_all_reruns_every_documented_ablation_variant(run_all, ablations, model):
    """`run_all.py` at full size refits every variant of the documented
    ablation table (those added by later --keep-earlier runs too), each with
    the settings the table shows."""
    path = ROOT / "docs" / "bench" / f"ablations_{model}.json"
    documented = json.loads(path.read_text())["results"]["variants"]
    args = run_all.BENCHMARKS[f"ablations_{model}"][2]
    given = args[args.index("--variants") + 1 :]
    given = given[: next((i for i, a in enumerate(given) if a.startswith("--")), None)]
    rerun = dict(ablations.variant(text) for text in given)
    assert rerun == documented


def test_smoke_refuses_to_overwrite_the_documented_figures():
    proc = run_script("run_all.py", "--smoke")
    assert proc.returncode == 2
    assert "--outdir" in proc.stderr


@pytest.fixture(scope="module")
def baselines():
    yield from bench_module("baselines")


def test_plain_recipe_picks_its_epoch_on_held_out_drugs(baselines):
    groups = np.repeat(np.arange(40), 6)
    held = baselines.drug_holdout(groups, 0.1, seed=0)
    assert set(groups[held]).isdisjoint(groups[~held])
    assert len(set(groups[held])) == 4


def test_baselines_score_both_protocols_on_the_same_world(tmp_path):
    proc = run_script(
        "baselines.py",
        *("--n-samples", "600", "--small", "--epochs", "2", "--folds", "3"),
        *("--threads", "1", "--outdir", str(tmp_path)),
    )
    assert_ok(proc)
    payload = json.loads((tmp_path / "baselines.json").read_text())
    protocols = payload["results"]["protocols"]
    assert set(protocols) == {"new-compound", "kaggle"}
    assert "max_drug_size=None" in protocols["new-compound"]["cv"]
    for result in protocols.values():
        table = result["table"]
        assert set(table) == {"prior", "logistic", "plain", "bayes"}
        prior, bayes = table["prior"]["loss"], table["bayes"]["loss"]
        assert bayes < prior
        assert table["logistic"]["gap_closed"] == pytest.approx(
            (prior - table["logistic"]["loss"]) / (prior - bayes)
        )


def test_baselines_are_kept_and_read_back_for_the_same_world_and_folds(
    baselines, tmp_path, monkeypatch
):
    """bench_quality.py reuses a baselines.py run of the same --workdir."""
    calls = []

    def fake(name):
        def model(train, Y, *args, **kwargs):
            calls.append(name)
            return np.full((len(args[-1]), Y.shape[1]), 0.1)

        return model

    monkeypatch.setattr(baselines, "logistic", fake("logistic"))
    monkeypatch.setattr(baselines, "plain", fake("plain"))
    X = pd.DataFrame({"g-0": np.arange(12.0)})
    Y, groups = np.zeros((12, 2)), np.arange(12)
    folds = [(np.arange(6, 12), np.arange(6)), (np.arange(6), np.arange(6, 12))]
    cache = tmp_path / "baselines_kaggle.npz"

    def run(key, folds=folds):
        return baselines.oof_baselines(
            X, Y, groups, folds, seed=0, cache=cache, key=key
        )

    oof, seconds = run({"signal": 1.3})
    assert calls == ["logistic", "plain"] * 2
    assert set(seconds) == {"logistic", "plain"}
    again, _ = run({"signal": 1.3})
    assert len(calls) == 4  # read back
    np.testing.assert_array_equal(again["plain"], oof["plain"])
    run({"signal": 1.5})  # another world: refitted
    assert len(calls) == 8
    run({"signal": 1.5}, folds=folds[::-1])  # other folds: refitted
    assert len(calls) == 12


@pytest.fixture(scope="module")
def ablations():
    yield from bench_module("ablations")


def test_ablation_variants_read_python_literals(ablations):
    assert ablations.variant("default") == ("default", {})
    name, params = ablations.variant(
        "deep:hidden_sizes=[64, 32],dropouts=(0.2, 0.1),powerset=0.3"
    )
    assert name == "deep"
    assert params == {"hidden_sizes": [64, 32], "dropouts": (0.2, 0.1), "powerset": 0.3}
    with pytest.raises(ValueError, match="not key=value"):
        ablations.variant("bad:hidden_sizes")
    with pytest.raises(ValueError, match="not a Python literal"):
        ablations.variant("bad:activation=relu")


def test_ablations_score_each_variant_on_the_same_folds_and_resume(tmp_path, run_all):
    args = (
        *("--small", "--n-samples", "600", "--folds", "2", "--threads", "1"),
        *("--variants", "default", "narrow:hidden_sizes=[8],dropouts=0.1"),
        "nokmeans:features__kmeans='passthrough'",  # a step of the features
        *("--workdir", str(tmp_path / "work"), "--outdir", str(tmp_path)),
    )
    proc = run_script("ablations.py", *args)
    assert_ok(proc)
    r = json.loads((tmp_path / "ablations_twostep.json").read_text())["results"]
    assert r["variants"] == {
        "default": {},
        "narrow": {"hidden_sizes": [8], "dropouts": 0.1},
        "nokmeans": {"features__kmeans": "passthrough"},
    }
    assert "max_drug_size=None" in r["cv"]
    table = r["table"]
    assert {"twostep default", "twostep narrow", "logistic regression"} <= set(table)
    assert table["twostep default"]["loss"] != table["twostep narrow"]["loss"]
    assert table["twostep default"]["loss"] != table["twostep nokmeans"]["loss"]
    assert len(r["best_epochs"]["twostep narrow"]) == 2  # one entry per fold
    again = run_script("ablations.py", *args)  # every fold read back
    assert_ok(again)
    assert "baselines read back" in again.stdout
    assert again.stdout.count("read back ablation_twostep_new-compound_") == 6
    r2 = json.loads((tmp_path / "ablations_twostep.json").read_text())["results"]
    assert r2["table"]["twostep narrow"]["loss"] == table["twostep narrow"]["loss"]
    text = run_all.render(tmp_path)
    assert "**Ablations of the twostep net** (*new-compound*" in text
    assert "| twostep narrow | hidden_sizes=[8], dropouts=0.1 |" in text
    assert "| twostep default | defaults |" in text


def test_ablation_table_borrows_the_baselines_of_the_same_folds(run_all):
    def row(loss):
        return dict(loss=loss, ratio_to_prior=loss / 0.02, gap_closed=0.5)

    world = {"n_samples": 10, "random_state": 0}
    ablation = dict(
        command="python benchmarks/ablations.py --skip-baselines",
        results=dict(
            model="twostep",
            protocol="new-compound",
            cv="KFold(3)",
            world=world,
            metric="loss",
            variants={"default": {}},
            table={"constant prior": row(0.02), "twostep default": row(0.015)},
            best_epochs={"twostep default": [["pretrain 3/4", "finetune 2/4"]]},
        ),
    )
    table = {"logistic regression on RankGauss + PCA(100)": row(0.017)}
    quality = dict(
        results=dict(
            world=world, protocols={"new-compound": dict(cv="KFold(3)", table=table)}
        )
    )
    text = "\n".join(run_all._ablations(ablation, quality))
    assert "| logistic regression on RankGauss + PCA(100)* |" in text
    assert "pretrain 3/4, finetune 2/4" in text
    quality["results"]["protocols"]["new-compound"]["cv"] = "KFold(5)"
    text = "\n".join(run_all._ablations(ablation, quality))
    assert "logistic" not in text  # other folds: not comparable


def test_quality_shows_each_net_at_its_class_defaults_from_its_ablation(run_all):
    """The recipe may set a net otherwise than its class (TabNet's one seed):
    the quality table adds the net at its class defaults, the `default` row of
    its ablation on the same world and folds, and says which nets at their
    class defaults are ahead of both baselines; other folds give nothing."""

    def row(loss):
        return dict(loss=loss, ratio_to_prior=loss / 0.02, gap_closed=0.5)

    world = {"n_samples": 10, "random_state": 0}

    def ablation(model, loss):
        return dict(
            command="python benchmarks/ablations.py",
            results=dict(
                model=model,
                protocol="new-compound",
                cv="KFold(3)",
                world=world,
                metric="loss",
                variants={"default": {}, "other": {"n_d": 8}},
                table={f"{model} default": row(loss), f"{model} other": row(0.01)},
            ),
        )

    runs = [ablation("tabnet", 0.0165), ablation("twostep", 0.0150)]
    table = {
        "constant prior": dict(row(0.02), seconds=None),
        "logistic regression on RankGauss + PCA(100)": dict(row(0.017), seconds=1),
        "plain public recipe's net": dict(row(0.0168), seconds=1),
        "TwoStepNetClassifier": dict(row(0.0151), seconds=None),
        "TabNetMultilabelClassifier": dict(row(0.0175), seconds=None),
        "StackingBlend (the recipe)": dict(row(0.0149), seconds=None),
    }
    p = dict(
        cv="KFold(3)",
        table=table,
        recipe_overrides=["tabnet n_seeds=1"],
        blend_beats_best_net=True,
        best_net="TwoStepNetClassifier",
        blend_weights=[{"twostep": 0.7, "tabnet": 0.3}],
        fold_fit_seconds=[1.0],
        pipeline_cv_seconds=60.0,
    )
    quality = dict(results=dict(world=world, protocols={"new-compound": p}))
    found = run_all._class_defaults(quality, runs)
    assert list(found["new-compound"]) == [
        "TwoStepNetClassifier",
        "TabNetMultilabelClassifier",
    ]
    text = "\n".join(
        run_all._quality_protocol("new-compound", p, found["new-compound"])
    )
    # a row only for the net the recipe sets otherwise
    assert (
        "| TabNetMultilabelClassifier at its class defaults\u2021 | 0.01650 |" in text
    )
    assert "TwoStepNetClassifier at its class defaults" not in text
    assert "not: TabNetMultilabelClassifier (n_seeds=1)." in text
    assert "TabNetMultilabelClassifier 0.01650; ahead of both: all of them." in text
    runs[0]["results"]["table"]["tabnet default"] = row(0.0169)
    found = run_all._class_defaults(quality, runs)["new-compound"]
    text = "\n".join(run_all._quality_protocol("new-compound", p, found))
    assert "ahead of both: TwoStepNetClassifier; not: TabNetMultilabel" in text
    for run in runs:
        run["results"]["cv"] = "KFold(5)"
    assert run_all._class_defaults(quality, runs) == {}  # other folds


def test_ablations_keep_the_earlier_variants_of_the_same_folds(ablations, run_all):
    """--keep-earlier: a run adds its variants to the saved table of the same
    net, world, protocol and folds; the rows it did not fit keep the command
    of the run that fitted them, through several runs; other folds: nothing
    is kept."""

    def row(loss):
        return dict(loss=loss, ratio_to_prior=loss / 0.02, gap_closed=0.5)

    def run(command, date, variants, losses, **extra):
        return dict(
            command=command,
            machine={"date": date, "cpu": "CPU"},
            results=dict(
                model="tabnet",
                protocol="new-compound",
                cv="KFold(3)",
                world={"n_samples": 10},
                metric="loss",
                variants=variants,
                table={
                    "constant prior": row(0.02),
                    **{f"tabnet {v}": row(x) for v, x in zip(variants, losses)},
                },
                best_epochs={f"tabnet {v}": [["fit 3/4"]] for v in variants},
                **extra,
            ),
        )

    first = run(
        "cmd1", "2026-12-01T00:00", {"default": {}, "a": {"n_d": 8}}, [0.018, 0.019]
    )
    second = run(
        "cmd2", "2026-12-02T00:00", {"b": {"n_d": 16}, "a": {"n_d": 9}}, [0.017, 0.016]
    )
    merged = ablations.keep_earlier(second["results"], first)
    # b and a (refitted, its new settings) from this run; default from cmd1
    assert merged["variants"] == {"b": {"n_d": 16}, "a": {"n_d": 9}, "default": {}}
    assert merged["table"]["tabnet a"]["loss"] == 0.016
    assert merged["table"]["tabnet default"]["loss"] == 0.018
    assert merged["earlier_runs"] == [
        {"command": "cmd1", "machine": first["machine"], "variants": ["default"]}
    ]
    # a third run keeps default's attribution to cmd1 and b's to cmd2
    third = run("cmd3", "2026-12-03T00:00", {"c": {}}, [0.015])
    merged3 = ablations.keep_earlier(third["results"], dict(second, results=merged))
    assert [(r["command"], r["variants"]) for r in merged3["earlier_runs"]] == [
        ("cmd1", ["default"]),
        ("cmd2", ["b", "a"]),
    ]
    text = "\n".join(run_all._ablations(dict(third, results=merged3)))
    assert "| tabnet default\u2020 | defaults | 0.01800 |" in text
    assert "| tabnet b\u2020\u2020 | n_d=16 | 0.01700 |" in text
    assert "| tabnet c | defaults | 0.01500 |" in text
    assert (
        "\u2020\u2020 fitted by an earlier run on the same world and folds (2026-12-02"
        in text
    )
    assert text.index("cmd3") < text.index("cmd1") < text.index("cmd2")
    # another world or other folds: the earlier table is not comparable
    other = dict(first, results=dict(first["results"], cv="KFold(5)"))
    assert "earlier_runs" not in ablations.keep_earlier(third["results"], other)
