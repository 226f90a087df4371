"""Drug-grouped CV of every model on one make_moa world, under both protocols.

On a full-size ``make_moa`` world at its defaults (fixed seed, written in the
Kaggle layout by ``moa-sklearn make-data``), K-fold CV under each protocol of
``moa-sklearn cv --protocol`` (the same folds for every model of a protocol):

- ``new-compound``: ``DrugMultilabelStratifiedKFold(K, max_drug_size=None)``,
  every drug held out whole (what predicting a new compound needs; the one
  the defaults are tuned on);
- ``kaggle``: ``DrugMultilabelStratifiedKFold(K)``, the large drugs split by
  row (the competition's scheme).

Models, out of fold:

- the constant prior (treated-row prevalence of the training folds, controls 0);
- the two plain baselines of ``benchmarks/baselines.py``: logistic regression
  on RankGauss + PCA(100), and the public recipe's net written plainly;
- the whole recipe, ``make_moa_pipeline(profile="full")``: features -> control
  rows -> ``StackingBlend`` of the two-step net, the Keras net and TabNet, with
  blend weights chosen on a drug-grouped inner CV of the training folds
  (nested CV: no weight sees its test fold). This runs as ``moa-sklearn cv``,
  which also scores each net as refitted inside the blend on the same
  training folds and features: "each net" below is that, like for like;
- the Bayes-optimal probabilities of the world.

Score: mean columnwise log loss over all rows (controls included) of the
out-of-fold predictions; baselines clipped to [0.0005, 0.9995] as the nets
clip theirs. "gap closed" is (prior - loss) / (prior - Bayes). Results go to
``docs/bench/quality.json`` and ``docs/bench/quality.png``.

The nets run as the recipe sets them (``make_moa_pipeline(profile="full")``:
their defaults, but TabNet with one seed), unless ``--epochs`` caps the Keras net's and
TabNet's epochs or ``--tabnet-epochs`` TabNet's alone. Each protocol's CV is
resumable: it is kept in ``--workdir`` and an interrupted run resumes from its
finished folds; the baselines' predictions are kept there too, and a
``baselines.py`` run with the same world, folds and ``--workdir`` is read back
instead of refitted. A run of some of the protocols keeps the others'
tables from the ``quality.json`` it replaces when world, folds and nets'
settings are the same (each protocol records the command that measured it
and the nets' defaults it ran at). After a change of a net's default,
``--mark-stale`` only marks the tables measured at other defaults ("to be
rerun" under them in the docs), until a run replaces them.

The documented run (3 folds, every net at its defaults; about two hours on
two cores)::

    python benchmarks/bench_quality.py --folds 3 --threads 2

A smoke run (about a minute)::

    python benchmarks/bench_quality.py --small --workdir /tmp/bq --outdir /tmp/bench
"""

import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

BLEND = "StackingBlend (the recipe)"
LABELS = {
    "twostep": "TwoStepNetClassifier",
    "keras": "KerasNetClassifier",
    "tabnet": "TabNetMultilabelClassifier",
}
BASELINES = {
    "logistic": "logistic regression on RankGauss + PCA(100)",
    "plain": "plain public recipe's net",
}
PROTOCOLS = ("new-compound", "kaggle")
# a model predicting with the mean of its inner-fold models (refit=False)
FOLD_MODELS = ", fold models"
# the blend with the learned second stage StackingBlend(final_estimator=
# "per_target"), and with weights="per_target", fitted on the inner
# out-of-fold predictions the CV kept
STAGE = "StackingBlend, per-target second stage"
TARGET_WEIGHTS = "StackingBlend, per-target weights"
# the blend with its weights chosen on the nets' own validation drugs
# (StackingBlend(cv="validation")), from the refits of a run with an inner
# CV: the same nets, only the weights differ
VALIDATION = "StackingBlend, weights on the nets' validation drugs"
# the blend of a run with an inner CV of K folds when the recipe's default
# is another: INNER_CV.format(K)
INNER_CV = "StackingBlend, weights on a {}-fold inner CV"
# the weights chosen on the test fold itself: no weight choice does better
# (an optimistic bound, not a model)
ORACLE = "StackingBlend, weights fitted on the test fold (a bound)"
# the blend without one of its nets (weights chosen again on the same inner
# out-of-fold predictions): does each net earn its place (and its fits)?
WITHOUT = "StackingBlend without "
# --small: a tiny world, features and nets (a smoke run of the whole
# benchmark); the nets' epochs come from --epochs, as every net's
SMALL_WORLD = dict(n_samples=600, n_genes=24, n_cells=8, n_scored=6, n_nonscored=5)
SMALL_FEATURES = dict(n_components={"g": 6, "c": 3}, n_clusters={"g": 3, "c": 2})
SMALL_NETS = {
    "twostep": dict(hidden_sizes=[16], dropouts=0.1, unfreeze_every=1, batch_size=64),
    "keras": dict(hidden_sizes=[16], dropouts=0.1, batch_size=64),
    "tabnet": dict(n_d=8, n_a=8, batch_size=64, virtual_batch_size=16),
}
SMALL_PLAIN = dict(hidden=32, n_pca=(6, 3), epochs=2)


def _inner_folds(value):
    return value if value == "validation" else int(value)


def recipe_inner_cv():
    """The blend's ``cv`` in ``make_moa_pipeline(profile="full")``."""
    from moa_sklearn.recipes import make_moa_pipeline

    return make_moa_pipeline(list(LABELS), profile="full").get_params()[
        "estimator__model__cv"
    ]


def parse_args(argv):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, signal=True, effects=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--inner-folds",
        type=_inner_folds,
        default=None,
        help="the blend's inner CV: an int, or 'validation' (default: the recipe's)",
    )
    parser.add_argument(
        "--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="Keras and TabNet (--small: all nets)"
    )
    parser.add_argument("--tabnet-epochs", type=int, default=None, help="TabNet")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument(
        "--mark-stale",
        action="store_true",
        help="only mark the tables of <outdir>/quality.json measured at other "
        "defaults of the nets (no run)",
    )
    parser.add_argument(
        "--workdir",
        default="benchmarks/work",
        help="the world, the blend's CV and the baselines",
    )
    _common.add_run_arguments(parser, small="smoke run", outdir=True)
    return parser.parse_args(argv)


def write_world(args, world_dir):
    """``moa-sklearn make-data`` of the world (unless written already)."""
    from moa_sklearn import cli

    world = _common.world_kwargs(args, n_test=0)
    world.pop("random_state")
    if args.small:
        world.update(SMALL_WORLD)
    if not (world_dir / "train_features.csv").is_file():
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in world.items()]
        cli.main(["make-data", str(world_dir), *flags, f"--seed={args.seed}"])
    return dict(world, random_state=args.seed)


def epochs(args):
    """The nets' epoch caps of the run (None: the net's default)."""
    if args.small:
        return dict.fromkeys(LABELS, args.epochs or 2)
    tabnet = args.tabnet_epochs or args.epochs
    return {"twostep": None, "keras": args.epochs, "tabnet": tabnet}


def model_params(args):
    """make_moa_pipeline's model_params of the three nets for this run."""
    caps = epochs(args)
    threads = {} if args.threads is None else {"n_threads": args.threads}
    params = {}
    for name in LABELS:
        p = dict(SMALL_NETS[name]) if args.small else {}
        if caps[name] is not None and name == "twostep":
            p.update(max_epochs_pretrain=caps[name], max_epochs_finetune=caps[name])
        elif caps[name] is not None:
            p.update(max_epochs=caps[name])
        params[name] = p | (threads if name != "keras" else {})
    return params


# parameters that say where and how a net runs, not what it learns
RUN_PARAMS = ("device", "n_threads", "random_state", "verbose")


def _learning_params(estimator):
    """An estimator's parameters but RUN_PARAMS, as JSON values."""
    params = estimator.get_params()
    return json.loads(
        json.dumps({k: v for k, v in params.items() if k not in RUN_PARAMS})
    )


def net_defaults():
    """What the recipe's three nets learn with, as JSON values: the settings
    of ``make_moa_pipeline(profile="full")`` (the table measures them)."""
    from moa_sklearn.recipes import make_moa_pipeline

    pipe = make_moa_pipeline(list(LABELS), profile="full")
    blend = pipe.estimator.named_steps["model"]
    return {name: _learning_params(net) for name, net in blend.estimators}


def recipe_overrides():
    """``net param=value`` of the recipe's settings that differ from the
    nets' class defaults (e.g. ``tabnet n_seeds=1``)."""
    from moa_sklearn import neural

    out = []
    for name, params in net_defaults().items():
        defaults = _learning_params(getattr(neural, LABELS[name])())
        out += [f"{name} {k}={v!r}" for k, v in params.items() if defaults[k] != v]
    return out


def changed_defaults(old, new):
    """``net.param: old -> new`` of the defaults that differ (one string)."""
    if old is None:
        return "the nets' defaults were not recorded"
    changes = [
        f"{net} {k}: {old[net].get(k)!r} -> {v!r}"
        for net in new
        for k, v in new[net].items()
        if old.get(net, {}).get(k) != v
    ]
    return "; ".join(changes)


def blend_cv(args, protocol, world_dir, cv_dir):
    """``moa-sklearn cv`` of the full pipeline (resumes a finished part)."""
    from moa_sklearn import cli

    config = dict(
        profile="quick" if args.small else "full",
        models=list(LABELS),
        seed=args.seed,
        folds=args.folds,
        protocol=protocol,
        inner_folds=args.inner_folds,
        feature_params=SMALL_FEATURES if args.small else {},
        model_params=model_params(args),
        save_inner_oof=True,  # second stages can be tried on them later
        # with --threads, one net at a time on that many threads: the
        # blend's fits in parallel (moa-sklearn's auto for the full profile)
        # would each run as many, more threads than cores (the recipe
        # benchmark measures the parallel fits)
        **({} if args.threads is None else {"n_jobs": 1}),
    )
    cfg = Path(args.workdir) / f"blend_cv_{protocol}.json"
    cfg.write_text(json.dumps(config, indent=1))
    t0 = time.perf_counter()
    if cli.main(["cv", str(world_dir), "-o", str(cv_dir), "--config", str(cfg)]):
        raise SystemExit("moa-sklearn cv failed")
    return time.perf_counter() - t0


def read_cv(cv_dir, shape):
    """OOF blend, per-net and Bayes predictions, folds and fold infos of a CV."""
    infos = [
        json.loads(p.read_text())
        for p in sorted(Path(cv_dir).glob("fold_*.json"))
        if p.stem.split("_")[1].isdigit()
    ]
    names = list(infos[0]["model_scores"])
    oof = {k: np.full(shape, np.nan) for k in ["blend", *names, "bayes"]}
    # the same fits predicting as refit=False (folds of a version without
    # them: no such rows)
    folded = all("fold_models_score" in i for i in infos)
    if folded:
        oof |= {k + FOLD_MODELS: np.full(shape, np.nan) for k in ["blend", *names]}
    folds = []
    for info in infos:
        with np.load(Path(cv_dir) / f"fold_{info['fold']}.npz") as f:
            test = f["test"]
            oof["blend"][test] = f["proba"]
            for m, name in enumerate(names):
                oof[name][test] = f["per_model"][m]
            oof["bayes"][test] = f["bayes"]
            for m, name in enumerate(["blend", *names] if folded else []):
                oof[name + FOLD_MODELS][test] = f["fold_models"][m]
        folds.append((np.setdiff1d(np.arange(shape[0]), test), test))
    return oof, folds, infos


def second_stage(cv_dir, moa, infos, oof):
    """Add the blend's per-target second stage and weights to ``oof`` (in place).

    For each outer fold, ``StackingBlend(final_estimator="per_target")``'s
    second stage and ``StackingBlend(weights="per_target")``'s weights are
    fitted on the inner out-of-fold predictions that the CV kept
    (``save_inner_oof``) and applied to the nets' test-fold predictions:
    those of the refits, and for the second stage also those of the fold
    models where the CV kept them. That is what the blend with that option
    predicts, from the same fits. Also, for each net, the blend of the others,
    its weights chosen again on their inner out-of-fold predictions
    (``WITHOUT``). Control rows keep the recipe's prediction (its floor).
    Besides, the weights fitted on the test fold (``ORACLE``), and where
    the CV kept them (a run with an inner CV), the weights chosen on the
    refits' own validation drugs (``VALIDATION``). Returns those weights per
    fold (empty without). Folds of a CV without inner predictions: no such
    rows.
    """
    from moa_sklearn.ensemble._weights import PerTargetLogit, _blend, blend_weights

    Y = moa.target.to_numpy()
    control = (moa.data["cp_type"] == "ctl_vehicle").to_numpy()
    names = list(infos[0]["model_scores"])
    stage, weights = {}, []
    for info in infos:
        with np.load(Path(cv_dir) / f"fold_{info['fold']}.npz") as f:
            if "inner_oof" not in f.files:
                return []
            inner, Y_inner = f["inner_oof"].astype(np.float64), Y[f["inner_rows"]]
            fitted = PerTargetLogit().fit(inner, Y_inner)
            _, W = blend_weights(
                "per_target", inner, Y_inner, n_estimators=len(names), shrinkage=0.5
            )
            test, floor = f["test"], f["proba"]
            P = f["per_model"].astype(np.float64)
            predictions = {STAGE: fitted.predict_proba(P), TARGET_WEIGHTS: _blend(P, W)}
            _, W = blend_weights(
                "optimize", P, Y[test], n_estimators=len(names), shrinkage=0.5
            )
            predictions[ORACLE] = _blend(P, W)
            if "validation_oof" in f.files:
                held = f["validation_oof"].astype(np.float64)
                w, W = blend_weights(
                    "optimize",
                    held,
                    Y[f["validation_rows"]],
                    n_estimators=len(names),
                    shrinkage=0.5,
                )
                predictions[VALIDATION] = _blend(P, W)
                weights.append(dict(zip(names, map(float, w))))
            for m, name in enumerate(names if len(names) > 2 else []):
                rest = [i for i in range(len(names)) if i != m]
                _, W = blend_weights(
                    "optimize", inner[rest], Y_inner, n_estimators=len(rest),
                    shrinkage=0.5,
                )  # fmt: skip
                predictions[WITHOUT + name] = _blend(P[rest], W)
            if "fold_models" in f.files:
                folded = f["fold_models"][1 : len(names) + 1].astype(np.float64)
                predictions[STAGE + FOLD_MODELS] = fitted.predict_proba(folded)
            for label, proba in predictions.items():
                proba = np.clip(proba, 1e-15, 1 - 1e-15)
                proba[control[test]] = floor[control[test]]
                stage.setdefault(label, np.full(Y.shape, np.nan))[test] = proba
    oof.update(stage)
    return weights


def baseline_predictions(moa, folds, args, protocol, world):
    """Out-of-fold predictions (clipped) and seconds of the two baselines.

    Kept in ``--workdir`` (``baselines_<protocol>.npz``): a rerun, or a
    ``baselines.py`` run of the same world, folds and ``--workdir``, is read
    back instead of refitted.
    """
    import baselines

    Y, groups = moa.target.to_numpy(), np.asarray(moa.groups)
    oof, seconds = baselines.oof_baselines(
        moa.data,
        Y,
        groups,
        folds,
        seed=args.seed,
        net_kw=dict(SMALL_PLAIN) if args.small else {},
        cache=Path(args.workdir) / f"baselines_{protocol}.npz",
        key=world,
    )
    return (
        {label: oof[key] for key, label in BASELINES.items()},
        {label: seconds[key] for key, label in BASELINES.items()},
    )


def _peak_memory(infos):
    """Peak memory (MiB) of the processes that fitted the CV's folds (None if
    a fold did not record it: a fold resumed from an older run)."""
    peaks = [i.get("peak_memory_mib") for i in infos]
    return None if None in peaks else max(peaks)


def score_protocol(args, protocol, moa, world_dir, world):
    """The table of one protocol: every model on the folds of its CV."""
    cv_dir = Path(args.workdir) / f"blend_cv_{protocol}"
    blend_seconds = blend_cv(args, protocol, world_dir, cv_dir)
    X, Y = moa.data, moa.target.to_numpy()
    oof, folds, infos = read_cv(cv_dir, Y.shape)
    validation_weights = second_stage(cv_dir, moa, infos, oof)
    # the recipe's blend: the one that ran, or, when the recipe chooses its
    # weights on the validation drugs and this run had an inner CV, the
    # same refits with those weights
    ran = args.inner_folds
    fold_weights = [i["weights"] for i in infos]
    ran_label = BLEND  # the row of the blend that ran
    if ran != recipe_inner_cv() == "validation" and VALIDATION in oof:
        ran_label = INNER_CV.format(ran)
        oof[ran_label] = oof["blend"]
        oof["blend"] = oof.pop(VALIDATION)
        fold_weights = validation_weights
    prior = _common.oof_prior(Y, _common.treated(X), folds)
    predictions = {"constant prior": np.clip(prior, 1e-5, 1 - 1e-5)}
    seconds = {}
    if not args.skip_baselines:
        base, seconds = baseline_predictions(moa, folds, args, protocol, world)
        predictions.update(base)
    names = list(infos[0]["model_scores"])
    labels = {n: LABELS.get(n, n) for n in names}
    for name in names:
        predictions[labels[name]] = oof[name]
    predictions[BLEND] = oof["blend"]
    if ran_label != BLEND:
        predictions[ran_label] = oof[ran_label]
    for name in (n for n in ["blend", *names] if n + FOLD_MODELS in oof):
        label = (ran_label if name == "blend" else labels[name]) + FOLD_MODELS
        predictions[label] = oof[name + FOLD_MODELS]
    stages = (TARGET_WEIGHTS, STAGE, STAGE + FOLD_MODELS, VALIDATION, ORACLE)
    stages += tuple(WITHOUT + n for n in names)
    predictions.update((k, oof[k]) for k in stages if k in oof)
    predictions["Bayes optimum"] = oof["bayes"]
    cv_seconds = sum(i["fit_seconds"] for i in infos)
    seconds[ran_label] = cv_seconds

    table = _common.score_table(Y, predictions, seconds)
    print(f"== {protocol}")
    _common.print_table(table)
    best_net = min(labels.values(), key=lambda k: table[k]["loss"])
    blend_loss, net_loss = table[BLEND]["loss"], table[best_net]["loss"]
    print(
        f"blend {blend_loss:.5f} vs best net ({best_net}) {net_loss:.5f}: "
        f"{'beats it' if blend_loss < net_loss else 'does NOT beat it'}"
    )
    from moa_sklearn.metrics import mean_columnwise_log_loss
    from moa_sklearn.model_selection import _protocol_splitter

    return dict(
        cv=repr(_protocol_splitter(protocol, args.folds, args.seed)),
        table=table,
        best_net=best_net,
        blend_beats_best_net=bool(blend_loss < net_loss),
        blend_weights=fold_weights,
        fold_scores=[
            {BLEND: mean_columnwise_log_loss(Y[test], predictions[BLEND][test])}
            | {labels[n]: v for n, v in i["model_scores"].items()}
            for (_, test), i in zip(folds, infos)
        ],
        fold_fit_seconds=[i["fit_seconds"] for i in infos],
        # the CV ran with this inner CV of the blend (its time below)
        blend_cv=ran,
        pipeline_cv_seconds=cv_seconds,
        this_run_blend_seconds=blend_seconds,
        peak_rss_mib=_peak_memory(infos),
    )


def main(argv=None):
    args = parse_args(argv)
    if args.inner_folds is None:
        args.inner_folds = recipe_inner_cv()
    if args.mark_stale:
        mark_stale(args.outdir)
        return

    from moa_sklearn.datasets import load_moa

    _common.threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    world_dir = work / "world"
    world = write_world(args, world_dir)
    moa = load_moa(world_dir)
    protocols = {
        p: score_protocol(args, p, moa, world_dir, world) for p in args.protocols
    }
    stamp = dict(
        command=_common.command(),
        date=_common.machine()["date"],
        net_defaults=net_defaults(),
        recipe_overrides=recipe_overrides(),
        # the recipe's blend cv when this ran (what its row measures)
        recipe_blend_cv=recipe_inner_cv(),
        # the blend cv this run's CV ran with (--inner-folds)
        inner_folds=args.inner_folds,
    )
    results = dict(
        world=world,
        rows=len(moa.target),
        folds=args.folds,
        epochs=epochs(args),
        metric="mean columnwise log loss over all rows (controls included)",
        protocols={p: dict(r, **stamp) for p, r in protocols.items()},
    )
    if args.skip_baselines:
        borrow_baselines(results, args.outdir)
    keep_other_protocols(results, args.outdir)
    _common.save("quality", results, args.outdir)
    plot(results, args.outdir)


# the settings two runs must share for their protocols to stand in one table
# (each protocol records the blend cv it ran with, ``inner_folds``)
SHARED = ("world", "rows", "folds", "epochs", "metric")


def _previous(outdir):
    """The ``quality.json`` this run replaces (None if there is none)."""
    path = (Path(outdir) if outdir else _common.DOCS_BENCH) / "quality.json"
    return (path, json.loads(path.read_text())) if path.is_file() else (path, None)


def borrow_baselines(results, outdir=None):
    """With ``--skip-baselines``: the plain baselines' rows of the same
    protocol, world and folds from the ``quality.json`` this run replaces.

    The baselines do not depend on the package's nets, so a run that only
    changed a net's defaults need not refit them; each borrowed table records
    the run it came from (``baselines_from``, rendered as a footnote).
    """
    path, old = _previous(outdir)
    if old is None:
        return
    previous = old["results"]
    if any(previous.get(k) != results[k] for k in SHARED):
        print(f"no baselines borrowed from {path}: another world or folds")
        return
    for name, p in results["protocols"].items():
        before = previous["protocols"].get(name)
        if before is None or before["cv"] != p["cv"]:
            continue
        rows = {k: v for k, v in before["table"].items() if k in BASELINES.values()}
        if not rows:
            continue
        origin = before.get("baselines_from") or dict(
            command=before.get("command", old["command"]),
            date=before.get("date", old["machine"]["date"]),
        )
        p["table"] = dict(p["table"], **rows)
        p["baselines_from"] = origin
        print(f"{name}: baselines borrowed from {path} ({origin['date'][:10]})")


def keep_other_protocols(results, outdir=None):
    """Carry over from ``<outdir>/quality.json`` the protocols this run did not
    score, if that file holds the same world, folds and nets' settings.

    So ``--protocols kaggle`` adds the Kaggle protocol's table next to a
    new-compound one measured earlier, instead of replacing the file. Each
    protocol keeps the command and date that measured it, and the nets'
    defaults it ran at: a kept table measured at other defaults than this
    run's gets ``defaults_changed_since`` (which defaults changed, rendered
    under its table).
    """
    path, old = _previous(outdir)
    if old is None:
        return
    previous = old["results"]
    missing = [p for p in previous["protocols"] if p not in results["protocols"]]
    if not missing:
        return
    differ = [k for k in SHARED if previous.get(k) != results[k]]
    if differ:
        print(f"not keeping {', '.join(missing)} of {path}: {', '.join(differ)} differ")
        return
    defaults = next(iter(results["protocols"].values())).get("net_defaults")
    for p in missing:
        kept = dict(previous["protocols"][p])
        kept.setdefault("command", old["command"])
        kept.setdefault("date", old["machine"]["date"])
        # a run before each protocol recorded its own: the run's
        kept.setdefault("inner_folds", previous.get("inner_folds"))
        results["protocols"][p] = kept
        print(f"kept {p} from {path} ({kept['date'][:10]}: {kept['command']})")
        if defaults:
            _mark_defaults(kept, defaults)
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    results["protocols"] = dict(
        sorted(results["protocols"].items(), key=lambda kv: order[kv[0]])
    )


def what_changed(table, defaults):
    """What changed since a protocol's table was measured (one string, empty
    if nothing): the nets' ``defaults`` and the recipe's blend cv."""
    changed = changed_defaults(table.get("net_defaults"), defaults)
    # a table of the runs before recipe_blend_cv was recorded: 2 folds
    was, now = table.get("recipe_blend_cv", 2), recipe_inner_cv()
    if was != now:
        changed = "; ".join(filter(None, [changed, f"blend cv: {was!r} -> {now!r}"]))
    return changed


def _mark_defaults(table, defaults):
    """A protocol's table measured at other defaults of the nets than
    ``defaults`` gets ``defaults_changed_since`` (which changed); else none."""
    changed = what_changed(table, defaults)
    if changed:
        table["defaults_changed_since"] = changed
        print(f"  measured at other defaults: {changed}")
    else:
        table.pop("defaults_changed_since", None)


def mark_stale(outdir=None):
    """Mark, without running anything, each table of ``<outdir>/quality.json``
    measured at other defaults of the nets than the installed package's.

    For the commit that changes a default: the tables say "to be rerun"
    until a run at the new defaults replaces them.
    """
    path, old = _previous(outdir)
    if old is None:
        raise SystemExit(f"{path} does not exist: nothing to mark")
    defaults = net_defaults()
    for name, table in old["results"]["protocols"].items():
        print(f"{name}:")
        _mark_defaults(table, defaults)
    path.write_text(json.dumps(old, indent=1) + "\n")
    print(f"wrote {path}")


def plot(results, outdir=None):
    """Horizontal bars of the CV loss per protocol, with the prior and Bayes."""
    plt = _common.pyplot()
    protocols = results["protocols"]
    first = next(iter(protocols.values()))["table"]
    names = [k for k in first if k not in ("constant prior", "Bayes optimum")]
    names.sort(key=lambda k: -first[k]["loss"])
    # a model only some protocols scored (e.g. baselines skipped in one run)
    for p in protocols.values():
        names += [k for k in p["table"] if k not in names and k not in first]
    fig, axes = plt.subplots(
        1,
        len(protocols),
        figsize=(7.5 * len(protocols), 0.45 * len(names) + 1.6),
        squeeze=False,
    )
    top = max(r["loss"] for p in protocols.values() for r in p["table"].values())
    for ax, (protocol, result) in zip(axes[0], protocols.items()):
        table = result["table"]
        shown = [(i, k) for i, k in enumerate(names) if k in table]
        colors = [
            "#C44E52"
            if k.startswith("StackingBlend")
            else "#8C8C8C"
            if k in BASELINES.values()
            else "#4C72B0"
            for _, k in shown
        ]
        ax.barh(
            [i for i, _ in shown], [table[k]["loss"] for _, k in shown], color=colors
        )
        for i, k in shown:
            ax.text(
                table[k]["loss"],
                i,
                f" {table[k]['loss']:.5f} ({table[k]['gap_closed']:.2f} of gap)",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(range(len(names)), names)
        for key, style in (("constant prior", "--"), ("Bayes optimum", ":")):
            ax.axvline(table[key]["loss"], color="k", ls=style, lw=1, label=key)
        ax.set_xlim(0, top * 1.4)
        ax.set_xlabel("mean columnwise log loss, out of fold over all rows")
        held = (
            "every drug whole"
            if "max_drug_size=None" in result["cv"]
            else ("large drugs split by row")
        )
        ax.set_title(f"{protocol} protocol ({held}), {results['folds']} folds")
        ax.legend(fontsize=8, loc="upper right")
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
    fig.suptitle(f"make_moa world, {results['rows']:,} rows (lower is better)")
    fig.tight_layout()
    _common.savefig(fig, "quality", outdir)


if __name__ == "__main__":
    main()
