"""One net, several settings, next to the plain baselines on the same folds.

The tool of the defaults' ablations: on a ``make_moa`` world (full size, the
defaults), drug-grouped K-fold CV under one protocol (``--protocol``,
new-compound by default: every drug held out whole), each variant of the net
``--model`` is fitted as the recipe fits it: ``make_moa_features()`` then the
net behind ``ControlVehicleClassifier`` (control rows predicted its floor),
with the drug ids (inner validation on held-out drugs) and the nonscored
targets routed. A variant is ``NAME`` or ``NAME:key=value,key=value``, the
values Python literals (``default`` alone is the net at its defaults); a key
``features__<step>`` or ``features__<step>__<param>`` sets the features'
pipeline instead (e.g. ``features__kmeans='passthrough'`` drops its KMeans
step)::

    python benchmarks/ablations.py --model twostep --folds 3 --threads 2 \\
        --variants default finetune8:max_epochs_finetune=8 \\
        "shallow:hidden_sizes=[1500,1000],dropouts=[0.5,0.3]"

Next to them, on the same folds: the constant prior, both plain baselines of
``baselines.py`` (read back from ``--workdir`` when a ``baselines.py`` or
``bench_quality.py`` run of the same world and folds left them there) and the
Bayes optimum. Score: mean columnwise log loss over all rows (controls
included), out of fold; "gap closed" is (prior - loss) / (prior - Bayes).
Each variant's folds are kept in ``--workdir``: an interrupted run resumes.
With ``--keep-earlier`` a run adds its variants to the saved table of the
same net, world, protocol and folds: the variants it does not fit stay, each
with the command and machine of the run that fitted it.
Results go to ``<outdir>/ablations_<model>.json``.

A smoke run (seconds)::

    python benchmarks/ablations.py --small --n-samples 600 --folds 2 \\
        --variants default wide:hidden_sizes=[32] --workdir /tmp/abl \\
        --outdir /tmp/bench
"""

import ast
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
import baselines  # noqa: E402
from _nets import make_net  # noqa: E402
from bench_quality import SMALL_PLAIN  # noqa: E402

MODELS = ("twostep", "keras", "tabnet")
FEATURES = "features__"  # a variant's key for make_moa_features' pipeline
PROTOCOLS = ("new-compound", "kaggle")
SMALL_WORLD = dict(n_genes=24, n_cells=8, n_scored=6, n_nonscored=5)


def variant(text):
    """``NAME[:key=value,...]`` -> (name, params); values are Python literals."""
    name, _, rest = text.partition(":")
    params = {}
    # split on the commas that start a new key=value (not inside a list)
    depth, start = 0, 0
    items = []
    for i, ch in enumerate(rest):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            items.append(rest[start:i])
            start = i + 1
    items.append(rest[start:])
    for item in filter(None, (s.strip() for s in items)):
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"variant {text!r}: {item!r} is not key=value")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"variant {text!r}: the value of {key} is not a Python literal"
            ) from None
    if not name.isidentifier():
        raise ValueError(f"variant {text!r}: its name must be an identifier")
    return name, params


def make_model(args, params):
    """``ControlVehicleClassifier(make_moa_features() -> net)``, as the recipe."""
    from sklearn.pipeline import Pipeline

    from moa_sklearn.ensemble import ControlVehicleClassifier
    from moa_sklearn.preprocessing import make_moa_features

    # features__<step or param>: of make_moa_features' pipeline; the rest: the net's
    feature_params = {
        k.removeprefix(FEATURES): v for k, v in params.items() if k.startswith(FEATURES)
    }
    net_params = {k: v for k, v in params.items() if not k.startswith(FEATURES)}
    net = make_net(args.model, args).set_params(**net_params)
    net.set_fit_request(groups=True, y_aux=True)
    sizes = _common.small_features(*args.columns) if args.small else {}
    features = make_moa_features(random_state=args.seed, **sizes)
    return ControlVehicleClassifier(
        Pipeline([("features", features.set_params(**feature_params)), ("model", net)])
    )


def best_epochs(history):
    """``step best/run`` of the first seed, e.g. ``['pretrain 23/24']``."""
    best, run = {}, {}
    for r in history:
        if r.get("seed", 0) != history[0].get("seed", 0):
            continue
        step = r.get("step") or "fit"
        run[step] = max(run.get(step, 0), r["epoch"])
        if r.get("best"):
            best[step] = r["epoch"]
    return [f"{step} {best.get(step, '-')}/{n}" for step, n in run.items()]


def fit_fold(args, params, world, train, test, path):
    """The test fold's probabilities of one variant (kept in ``path``)."""
    import sklearn

    if path.is_file():
        with np.load(path) as f:
            if np.array_equal(f["test"], test):
                print(f"  read back {path.name}", flush=True)
                return f["proba"], float(f["seconds"]), json.loads(str(f["best"]))
    X, Y = world.data, world.target.to_numpy()
    t0 = time.perf_counter()
    with sklearn.config_context(enable_metadata_routing=True):
        model = make_model(args, params)
        model.fit(
            X.iloc[train],
            Y[train],
            groups=world.groups.to_numpy()[train],
            y_aux=world.target_aux.to_numpy()[train],
        )
    seconds = time.perf_counter() - t0
    proba = model.predict_proba(X.iloc[test])
    best = best_epochs(model.estimator_[-1].history_)
    np.savez(path, test=test, proba=proba, seconds=seconds, best=json.dumps(best))
    return proba, seconds, best


def main(argv=None):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, signal=True, effects=True)
    parser.add_argument("--model", choices=MODELS, default="twostep")
    parser.add_argument("--variants", nargs="+", type=variant, default=["default"])
    parser.add_argument("--protocol", choices=PROTOCOLS, default="new-compound")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--workdir", default="benchmarks/work")
    parser.add_argument(
        "--keep-earlier",
        action="store_true",
        help="keep the variants of the saved table (same net, world, protocol "
        "and folds) that this run does not fit, each with the run that made it",
    )
    _common.add_run_arguments(parser, small="a tiny world and small nets", outdir=True)
    args = parser.parse_args(argv)
    args.variants = [v if isinstance(v, tuple) else variant(v) for v in args.variants]
    names = [n for n, _ in args.variants]
    if len(set(names)) != len(names):
        parser.error(f"--variants: names must differ, got {names}")
    args.epochs = 2 if args.small else None  # make_net's per-step epochs

    from moa_sklearn.model_selection import _protocol_splitter

    _common.threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    world_kw = _common.world_kwargs(args, n_test=0)
    if args.small:
        world_kw.update(SMALL_WORLD)
    args.columns = (world_kw.get("n_genes", 772), world_kw.get("n_cells", 100))
    world = _common.make_world(args, **world_kw)
    X, Y, groups = world.data, world.target.to_numpy(), world.groups.to_numpy()
    cv = _protocol_splitter(args.protocol, args.folds, args.seed)
    folds = list(cv.split(X, Y, groups))
    print(f"{args.model} under {args.protocol}: {cv!r}", flush=True)

    predictions = {
        "constant prior": np.clip(
            _common.oof_prior(Y, _common.treated(X), folds), 1e-5, 1 - 1e-5
        )
    }
    seconds = {}
    if not args.skip_baselines:
        base, base_s = baselines.oof_baselines(
            X,
            Y,
            groups,
            folds,
            seed=args.seed,
            net_kw=SMALL_PLAIN if args.small else {},
            cache=work / f"baselines_{args.protocol}.npz",
            key=world_kw,
        )
        for key, label in (("logistic", "logistic regression"), ("plain", "plain net")):
            predictions[label], seconds[label] = base[key], base_s[key]
    best_epochs = {}
    for name, params in args.variants:
        P, total, best = np.full(Y.shape, np.nan), 0.0, []
        for k, (train, test) in enumerate(folds):
            path = work / f"ablation_{args.model}_{args.protocol}_{name}_{k}.npz"
            P[test], s, b = fit_fold(args, params, world, train, test, path)
            total += s
            best.append(b)
            print(f"  {name} fold {k}: {s:.0f} s, best epochs {b}", flush=True)
        label = f"{args.model} {name}"
        predictions[label], seconds[label], best_epochs[label] = P, total, best
    predictions["Bayes optimum"] = world.bayes_proba.to_numpy()

    table = _common.score_table(Y, predictions, seconds)
    _common.print_table(table)
    results = dict(
        world=world_kw,
        protocol=args.protocol,
        cv=repr(cv),
        model=args.model,
        variants=dict(args.variants),
        metric="mean columnwise log loss over all rows (controls included)",
        table=table,
        best_epochs=best_epochs,
    )
    name = f"ablations_{args.model}"
    path = Path(args.outdir or _common.DOCS_BENCH) / f"{name}.json"
    if args.keep_earlier and path.is_file():
        results = keep_earlier(results, json.loads(path.read_text()))
    _common.save(name, results, args.outdir)


def keep_earlier(results, earlier):
    """``results`` with the variants of an ``earlier`` run that it lacks.

    Only from a run of the same net, world, protocol and folds (otherwise
    ``results`` as is); the rows kept say which run they come from
    (``earlier_runs``: its command, machine and variants).
    """
    old = earlier["results"]
    if any(old.get(k) != results[k] for k in ("model", "world", "protocol", "cv")):
        return results
    prefix = f"{results['model']} "
    kept = [v for v in old["variants"] if v not in results["variants"]]
    if not kept:
        return results
    results = dict(results, variants=dict(results["variants"]))
    results["table"] = dict(results["table"])
    results["best_epochs"] = dict(results["best_epochs"])
    for v in kept:
        label = prefix + v
        results["variants"][v] = old["variants"][v]
        results["table"][label] = old["table"][label]
        if label in old.get("best_epochs", {}):
            results["best_epochs"][label] = old["best_epochs"][label]
    runs = []
    for run in old.get("earlier_runs", []):
        still = [v for v in run["variants"] if v in kept]
        if still:
            runs.append(dict(run, variants=still))
    own = [v for v in kept if not any(v in r["variants"] for r in runs)]
    if own:
        runs.append(
            dict(command=earlier["command"], machine=earlier["machine"], variants=own)
        )
    results["earlier_runs"] = runs
    return results


if __name__ == "__main__":
    main()
