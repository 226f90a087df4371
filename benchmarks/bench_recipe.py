"""The default recipe at full size, run as a user runs it: fit, predict, K-fold CV.

The steps, each in a fresh process (so that its peak memory is its own), on
a ``make_moa`` world written in the Kaggle layout by ``moa-sklearn
make-data`` (lish-moa's size by default: 23,814 training and 3,982 test
rows; kept in ``--workdir`` and reused):

- ``fit``: ``moa-sklearn fit`` of ``make_moa_pipeline(profile="full")`` at
  its defaults (every net's, the features' and the blend's inner CV) on all
  training rows; then, in another fresh process as ``moa-sklearn predict``
  runs, the model file is loaded and ``predict_proba`` of the test rows is
  timed (best of 3, after a first call), and its log loss on the test rows
  is put next to the Bayes loss of the same rows.
- ``cv``: ``moa-sklearn cv --folds K`` (5 by default, the new-compound
  protocol by default) of the same recipe, resumable: a rerun continues from
  the finished folds. The CV time is the sum of the recipe's fit times over
  the folds, as ``moa-sklearn cv`` records them (what ``cross_val_score``
  would spend, but for the predictions of the test folds; the wall time of
  the run, with ``cv``'s extras, the plain baseline and the fold models'
  predictions, is recorded beside it).

``--n-jobs`` is passed on as ``moa-sklearn``'s (default ``auto``, its
default: every core for the full profile). The peak memory is the largest
of the main process's peak and the summed memory of the main process and
its workers (sampled; ``psutil``; proportional set sizes, so that the
libraries they share count once). A run replaces
``recipe.json`` but keeps from it, when world, threads, settings and
machine are the same, its runs at other ``n_jobs`` (one column each in the
table) and the steps of its run at this ``n_jobs`` that this run did not
take (a ``--steps cv`` run keeps the fit), each step with its command.

Each figure is set against the target of the "portable and fast" issue:
one fit at most 12 min, the 5-fold CV at most 45 min, peak memory at most
6 GiB, predicting 3,982 rows at most 2 s (all on 2 cores). The record names
the CPU flags and whether bf16 was native (the two-step net trains in bf16
only then).

The documented run (two threads of a quiet 2-core machine; the CV takes
hours at the defaults)::

    python benchmarks/bench_recipe.py --threads 2

``--steps fit`` runs the fit alone. Each step records what the recipe's nets
learn with (``net_settings``); ``--mark-stale`` runs nothing and marks each
step of ``recipe.json`` measured at other settings than the installed
package's (``settings_changed_since``, rendered as "to be rerun"), for the
commit that changes a default. A smoke run (a minute)::

    python benchmarks/bench_recipe.py --small --n-samples 300 --n-test 100 \\
        --n-genes 40 --n-cells 10 --n-scored 6 --n-nonscored 5 --models twostep \\
        --inner-folds 2 --cv-folds 2 --epochs 1 --workdir /tmp/recipe-smoke \\
        --outdir /tmp/bench
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

# the targets (2 cores): seconds, seconds, MiB, seconds
TARGETS = dict(
    fit_seconds=12 * 60,
    cv_seconds=45 * 60,
    peak_memory_mib=6 * 1024,
    predict_seconds=2.0,
)
STEPS = ("fit", "cv")
# the processes: the fit step runs "fit", then "predict" (a fresh process
# loading the model file, as moa-sklearn predict does)
CHILDREN = ("fit", "predict", "cv")
# the world's arguments, passed on to moa-sklearn make-data as flags
WORLD_KEYS = ("n_samples", "n_test", *_common.WORLD_COLUMNS, "seed")


def parse_args(argv):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, n_test=3982, columns=True)
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument(
        "--protocol", choices=("new-compound", "kaggle"), default="new-compound"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="cap every net's epochs (smoke runs)"
    )
    parser.add_argument(
        "--models", nargs="+", default=None, help="the blend's nets (default: all)"
    )
    parser.add_argument(
        "--inner-folds",
        type=lambda v: v if v == "validation" else int(v),
        default=None,
        help="an int or 'validation' (default: the profile's)",
    )
    parser.add_argument(
        "--n-jobs",
        type=lambda v: v if v == "auto" else int(v),
        default="auto",
        help="the blend's parallel fits, as moa-sklearn's --n-jobs (default: "
        "auto, its default: every core for the full profile)",
    )
    parser.add_argument(
        "--workdir",
        default="benchmarks/work/recipe",
        help="the world, the model file and the CV folder (kept: the CV resumes)",
    )
    _common.add_run_arguments(parser, small="quick profile (smoke runs)", outdir=True)
    parser.add_argument(
        "--mark-stale",
        action="store_true",
        help="only mark the steps of recipe.json measured at other settings",
    )
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _settings(args):
    """The settings file of ``moa-sklearn fit`` / ``cv`` (profile, caps).

    ``--threads`` is not a setting: each step's process sets torch's and
    BLAS's threads, which the nets use (their ``n_threads=None``), so that a
    CV resumed with another thread count continues.
    """
    model_params = {}
    if args.epochs is not None:
        e = args.epochs
        model_params = dict(
            twostep=dict(max_epochs_pretrain=e, max_epochs_finetune=e),
            keras=dict(max_epochs=e),
            tabnet=dict(max_epochs=e),
        )
    settings = dict(
        profile="quick" if args.small else "full",
        seed=args.seed,
        models=args.models,
        inner_folds=args.inner_folds,
        n_jobs=args.n_jobs,
    )
    if model_params:
        settings["model_params"] = model_params
    if args.small:  # the quick profile's features need the full column counts
        settings["feature_params"] = (
            _common.small_features(args.n_genes, args.n_cells) or None
        )
    return {k: v for k, v in settings.items() if v is not None}


def net_settings(settings):
    """What the nets of the recipe ``settings`` (``moa-sklearn``'s) learn
    with, as JSON values: the blend's nets as ``moa-sklearn fit`` builds them,
    but their run parameters (device, threads, seed, verbosity)."""
    from bench_quality import _learning_params

    from moa_sklearn import cli

    full = {**cli._DEFAULTS, **settings}
    names, _ = cli._model_names(full)
    pipe = cli._build_pipeline(full, names)
    blend = pipe.estimator.named_steps["model"]
    return {name: _learning_params(net) for name, net in blend.estimators}


def _mark(step, settings):
    """A step measured at other nets' settings than the installed package
    makes of ``settings`` gets ``settings_changed_since``; else none."""
    from bench_quality import changed_defaults

    changed = changed_defaults(step.get("net_settings"), net_settings(settings))
    if changed:
        step["settings_changed_since"] = changed
    else:
        step.pop("settings_changed_since", None)
    return changed


def mark_stale(outdir=None):
    """Mark, without running anything, each step of ``<outdir>/recipe.json``
    measured at other settings of the nets than the installed package's."""
    path = Path(outdir or _common.DOCS_BENCH) / "recipe.json"
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: nothing to mark")
    payload = json.loads(path.read_text())
    r = payload["results"]
    for run in [r, *r.get("other_runs", [])]:
        for step in STEPS:
            if step in run:
                changed = _mark(run[step], run["settings"])
                print(f"{_jobs_label(run['settings'])} {step}: {changed or 'current'}")
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {path}")


def _data(args, work):
    """Write the world with ``moa-sklearn make-data`` unless it is there already."""
    from moa_sklearn import cli

    folder = work / "data"
    spec = {k: getattr(args, k) for k in WORLD_KEYS}
    stamp = work / "data.json"
    if folder.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == spec:
        return folder
    argv = ["make-data", str(folder)]
    for key, value in spec.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    if folder.exists():  # another world: make-data writes a fresh folder
        import shutil

        shutil.rmtree(folder)
    if cli.main(argv) != 0:
        raise SystemExit("moa-sklearn make-data failed")
    stamp.write_text(json.dumps(spec))
    return folder


def _test_losses(folder, proba, index):
    """Log loss of ``proba`` on the test rows and the Bayes loss, from truth/."""
    import pandas as pd

    from moa_sklearn.metrics import mean_columnwise_log_loss

    truth = Path(folder) / "truth"
    y = pd.read_csv(truth / "test_targets_scored.csv", index_col="sig_id")
    bayes = pd.read_csv(truth / "test_bayes_proba.csv", index_col="sig_id")
    y, bayes = y.loc[index], bayes.loc[index]
    return (
        mean_columnwise_log_loss(y.to_numpy(), proba),
        mean_columnwise_log_loss(y.to_numpy(), bayes.to_numpy()),
    )


def child_fit(args, work, folder, config):
    """``moa-sklearn fit`` of the model file; one RESULT line."""
    from moa_sklearn import cli

    model = work / "model.joblib"
    t0 = time.perf_counter()
    with _common.TreeMemory() as tree:
        code = cli.main(["fit", str(folder), "-o", str(model), "--config", str(config)])
    fit_s = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"moa-sklearn fit failed ({code})")
    out = dict(
        fit_seconds=fit_s,
        peak_memory_fit_mib=_common.peak_rss_mib(),
        # with the blend's workers: what the machine must hold (PSS summed;
        # and the resident sizes summed, an upper bound)
        peak_memory_fit_tree_mib=tree.peak_mib,
        peak_memory_fit_tree_rss_mib=tree.peak_rss_mib,
        model_file_mib=model.stat().st_size / 2**20,
    )
    print("RESULT " + json.dumps(out), flush=True)


def child_predict(args, work, folder, config):
    """Load the model file and predict the test rows (timed); one RESULT line."""
    from moa_sklearn import cli
    from moa_sklearn.datasets import load_moa

    test = load_moa(folder).test_data
    t0 = time.perf_counter()
    pipe = cli._load_pipeline(work / "model.joblib")
    load_s = time.perf_counter() - t0
    times = []
    for _ in range(4):  # the first call warms up; the best of the 3 others
        t0 = time.perf_counter()
        proba = pipe.predict_proba(test)
        times.append(time.perf_counter() - t0)
    loss, bayes = _test_losses(folder, proba, test.index)
    blend = pipe.estimator_.named_steps["model"]
    out = dict(
        load_seconds=load_s,
        first_predict_seconds=times[0],
        predict_seconds=min(times[1:]),
        predict_process="fresh",  # not the fitting one
        n_test=len(test),
        test_loss=loss,
        test_bayes_loss=bayes,
        inner_folds=_n_splits(blend.cv),
        # how the fit ran: the blend's processes, and the threads it gave
        # each net for its fit (None: the engine's own, every core)
        n_jobs=blend.n_jobs,
        threads_per_fit=_threads_per_fit(blend),
        blend_weights=dict(zip(blend.named_estimators_, map(float, blend.weights_))),
        peak_memory_predict_mib=_common.peak_rss_mib(),
    )
    print("RESULT " + json.dumps(out), flush=True)


def _threads_per_fit(blend):
    """The threads the blend gave each net for its fit, as it computes them."""
    from moa_sklearn.ensemble._base import _threads_per_fit

    k = _n_splits(blend.cv)
    n_fits = len(blend.estimators) * (1 if k == "validation" else k + 1)
    return _threads_per_fit(blend.n_jobs, n_fits)


def _resolved_n_jobs(settings):
    """The blend's ``n_jobs`` that ``moa-sklearn`` makes of the settings (a
    record without ``n_jobs`` predates ``auto``: one process)."""
    from moa_sklearn import cli

    return cli._n_jobs({**cli._DEFAULTS, "n_jobs": None, **settings})


def _jobs_label(args_or_settings):
    """ "1" for one process (n_jobs None or 1), else the resolved n_jobs."""
    settings = (
        args_or_settings
        if isinstance(args_or_settings, dict)
        else _settings(args_or_settings)
    )
    n_jobs = _resolved_n_jobs(settings)
    return "1" if n_jobs in (None, 1) else str(n_jobs)


def _n_splits(cv):
    """The blend's inner folds: an int, or ``"validation"`` (none)."""
    return cv if isinstance(cv, (int, str)) else cv.get_n_splits()


def child_cv(args, work, folder, config):
    """``moa-sklearn cv`` (resumable); one RESULT line from its fold files."""
    from moa_sklearn import cli

    # one folder per n_jobs: a resumed CV continues its own run's folds
    cvdir = work / f"cv_{args.protocol}_{args.cv_folds}_jobs{_jobs_label(args)}"
    argv = ["cv", str(folder), "-o", str(cvdir), "--folds", str(args.cv_folds)]
    argv += ["--protocol", args.protocol, "--config", str(config)]
    run_folds = [
        k for k in range(args.cv_folds) if not (cvdir / f"fold_{k}.json").is_file()
    ]
    t0 = time.perf_counter()
    with _common.TreeMemory() as tree:
        code = cli.main(argv)
    run_s = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"moa-sklearn cv failed ({code})")
    summary = json.loads((cvdir / "cv_summary.json").read_text())
    folds = [
        json.loads((cvdir / f"fold_{k}.json").read_text()) for k in range(args.cv_folds)
    ]
    out = dict(
        folds=args.cv_folds,
        protocol=args.protocol,
        cv_seconds=float(sum(f["fit_seconds"] for f in folds)),
        fold_seconds=[f["fit_seconds"] for f in folds],
        this_run_seconds=run_s,
        peak_memory_mib=max(f["peak_memory_mib"] for f in folds),
        fold_peak_memory_mib=[f["peak_memory_mib"] for f in folds],
        # main process and workers summed, over the folds this run fitted
        # (None: psutil missing, or every fold read back)
        peak_memory_tree_mib=tree.peak_mib if len(run_folds) else None,
        peak_memory_tree_rss_mib=tree.peak_rss_mib if len(run_folds) else None,
        folds_this_run=run_folds,
        scores={
            key: summary.get(key)
            for key in ("score", "model_scores", "baseline_score", "prior_score")
        }
        | {"bayes_score": summary.get("bayes_score")},
        command=f"moa-sklearn {' '.join(argv)}",
    )
    print("RESULT " + json.dumps(out, default=_common._default), flush=True)


def run_child(step, args):
    """Run ``--child step`` in a fresh process; return its RESULT dict."""
    argv = [sys.executable, __file__, "--child", step]
    argv += [a for a in sys.argv[1:] if a != "--child"]
    print(f"{step} ...", flush=True)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:])
        raise SystemExit(f"the {step} step failed ({proc.returncode})")
    return json.loads(lines[-1][len("RESULT ") :])


def verdicts(results):
    """Each measured figure against the issue's target: (value, target, met)."""
    out = {}
    fit, cv = results.get("fit"), results.get("cv")
    if fit:
        out["fit_seconds"] = fit["fit_seconds"]
        out["predict_seconds"] = fit["predict_seconds"]
    if cv and cv["folds"] == 5:
        out["cv_seconds"] = cv["cv_seconds"]
    # the main process's peaks, and main process + workers summed
    peaks = [
        r.get(key)
        for r in (fit, cv)
        if r
        for key in (
            "peak_memory_mib",
            "peak_memory_fit_tree_mib",
            "peak_memory_tree_mib",
        )
    ]
    peaks = [p for p in peaks if p is not None]
    if peaks:
        out["peak_memory_mib"] = max(peaks)
    return {
        k: dict(value=v, target=TARGETS[k], met=bool(v <= TARGETS[k]))
        for k, v in out.items()
    }


def main(argv=None):
    args = parse_args(argv)
    if args.mark_stale:
        return mark_stale(args.outdir)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    config = work / "settings.json"
    if args.child is not None:
        _common.threads(args.threads)
        step = {"fit": child_fit, "predict": child_predict, "cv": child_cv}
        return step[args.child](args, work, work / "data", config)
    if args.cv_folds < 2:
        raise SystemExit(f"--cv-folds must be at least 2, got {args.cv_folds}")
    _data(args, work)
    config.write_text(json.dumps(_settings(args)))
    results = dict(
        world={k: getattr(args, k) for k in WORLD_KEYS},
        settings=_settings(args),
        threads=args.threads,
        bf16_native=_common.bf16_native(),
    )
    for step in STEPS:
        if step in args.steps:
            results[step] = run_child(step, args)
            if step == "fit":
                results[step] |= run_child("predict", args)
                results[step]["peak_memory_mib"] = max(
                    results[step]["peak_memory_fit_mib"],
                    results[step]["peak_memory_predict_mib"],
                )
            results[step]["bench_command"] = _common.command()
            results[step]["net_settings"] = net_settings(results["settings"])
            _print(step, results[step])
    outdir = Path(args.outdir) if args.outdir else _common.DOCS_BENCH
    previous = outdir / "recipe.json"
    if previous.is_file():
        results = merge(json.loads(previous.read_text()), results, _common.machine())
    results["targets"] = verdicts(results)
    for run in [results, *results.get("other_runs", [])]:
        run["targets"] = verdicts(run)
        for step in STEPS:  # kept steps measured at other settings: marked
            if step in run:
                _mark(run[step], run["settings"])
    _common.save("recipe", results, args.outdir)


# what an earlier record must share with this run to stand beside it
_SAME_MACHINE = ("cpu", "cpu_flags", "logical_cores")


def merge(previous, results, machine):
    """This run's results with what an earlier record adds to them.

    ``previous`` is the ``recipe.json`` payload this run replaces. If it is
    of the same world, threads, settings (but ``n_jobs``) and machine (CPU,
    flags, cores), its run at this run's ``n_jobs`` gives the steps this run
    did not take (e.g. the fit of a ``--steps cv`` run), and its runs at
    other ``n_jobs`` are kept in ``other_runs`` (one per ``n_jobs``), each
    step with the command that measured it. Otherwise ``results`` as is.
    """
    old = previous["results"]
    old_machine = previous.get("machine", {})

    def bare(settings):
        return {k: v for k, v in settings.items() if k != "n_jobs"}

    same = (
        old.get("world") == results["world"]
        and old.get("threads") == results["threads"]
        and all(old_machine.get(k) == machine.get(k) for k in _SAME_MACHINE)
    )
    if not same:
        return results
    runs = [{k: v for k, v in old.items() if k != "other_runs"}]
    runs += old.get("other_runs", [])
    label = _jobs_label(results["settings"])
    kept = {}
    for run in runs:
        if bare(run.get("settings", {})) != bare(results["settings"]):
            continue
        for step in STEPS:  # the command of a step measured before this field
            if step in run:
                run[step].setdefault("bench_command", previous.get("command"))
        other = _jobs_label(run["settings"])
        if other == label:
            for step in STEPS:
                if step not in results and step in run:
                    results[step] = run[step]
        elif other not in kept:
            # a record without n_jobs predates "auto": one process
            run["settings"] = {"n_jobs": None, **run["settings"]}
            kept[other] = {k: v for k, v in run.items() if k in ("settings", *STEPS)}
    if kept:
        results["other_runs"] = [kept[k] for k in sorted(kept)]
    return results


def _print(step, r):
    if step == "fit":
        print(
            f"  fit {r['fit_seconds'] / 60:.1f} min ({r['inner_folds']} inner folds), "
            f"predict {r['n_test']} rows {r['predict_seconds']:.2f} s, test loss "
            f"{r['test_loss']:.5f} (Bayes {r['test_bayes_loss']:.5f}), peak memory "
            f"{r['peak_memory_mib'] / 1024:.1f} GiB",
            flush=True,
        )
    else:
        print(
            f"  {r['folds']}-fold {r['protocol']} CV {r['cv_seconds'] / 60:.1f} min "
            f"(folds {', '.join(f'{s / 60:.1f}' for s in r['fold_seconds'])} min), "
            f"peak memory {r['peak_memory_mib'] / 1024:.1f} GiB",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
