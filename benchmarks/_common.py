"""What the benchmarks share: arguments, the world, scores, records.

- ``parser``, ``add_world_arguments``, ``add_run_arguments``: the arguments
  that every script spells the same way (``--n-samples``, ``--seed``,
  ``--threads``, ``--small``, ``--outdir``, ...); ``make_world`` draws the
  ``make_moa`` world they name.
- ``drug_folds``, ``oof_prior``, ``oof_predictions``, ``score_table``,
  ``print_table``: drug-grouped CV and the loss table (loss, ratio to the
  prior, share of the prior-to-Bayes gap closed) of every quality figure.
- ``save(name, results, outdir)`` writes ``<outdir>/<name>.json`` holding the
  results next to the machine (CPU, cores, memory, library versions, git
  commit) and the exact command that produced them, so that a figure in the
  docs can always be traced back and reproduced.
"""

import argparse
import inspect
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from moa_sklearn.utils._environment import _bf16_native as _native
from moa_sklearn.utils._environment import _cpu_flags, _cpuinfo, peak_memory_mib
from moa_sklearn.utils._environment import machine as _machine

DOCS_BENCH = Path(__file__).resolve().parent.parent / "docs" / "bench"


def _git_commit():
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def machine():
    """The machine, library versions and git commit, as a JSON-able dict."""
    try:  # imported, so that the record names the GPU, if any
        import torch  # noqa: F401
    except ImportError:
        pass
    return dict(_machine(), git_commit=_git_commit())


def cpu_flags():
    """The speed-relevant instruction-set flags of this CPU (/proc/cpuinfo)."""
    return _cpu_flags(_cpuinfo())


def bf16_native(device="cpu"):
    """Whether the package trains in bf16 on ``device`` here (its own check).

    False where the hardware lacks native bf16 or ``MOA_SKLEARN_NO_BF16`` is set.
    """
    import torch  # noqa: F401  (the check needs it imported)

    if device == "cpu":
        return _native()
    from moa_sklearn.neural._torch_utils import bf16_supported

    return bf16_supported(device)


def command():
    """The command line that runs this process (as typed, best effort)."""
    script = os.path.relpath(sys.argv[0]) if sys.argv[0] else "python"
    return " ".join(shlex.quote(a) for a in ["python", script, *sys.argv[1:]])


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (the package's
    reading, which ``moa-sklearn cv`` records per fold)."""
    return peak_memory_mib()


class TreeMemory:
    """Peak memory of this process and its children, summed.

    What a machine must hold while ``n_jobs`` workers (loky's processes) fit
    beside the main process: a thread sums the memory of the process tree
    every ``interval`` seconds (psutil). ``peak_mib`` is the largest sum of
    the proportional set sizes (PSS: a page shared by k processes, such as
    the engines' libraries, counts 1/k in each; where the system does not
    report it, the resident sizes), ``peak_rss_mib`` that of the resident
    sizes (shared pages counted in every process: an upper bound); None
    where psutil is not installed. Use it as a context manager::

        with TreeMemory() as tree:
            ...
        tree.peak_mib, tree.peak_rss_mib
    """

    def __init__(self, interval=0.5):
        self.interval = interval
        self.peak_mib = None
        self.peak_rss_mib = None

    def _sample(self):
        pss = rss = 0
        procs = [self._process, *self._process.children(recursive=True)]
        for proc in procs:
            try:
                info = proc.memory_full_info()
            except Exception:  # exited meanwhile, or no access to its maps
                try:
                    info = proc.memory_info()
                except Exception:
                    continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_mib = max(self.peak_mib or 0.0, pss / 2**20)
        self.peak_rss_mib = max(self.peak_rss_mib or 0.0, rss / 2**20)

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        try:
            import psutil
        except ImportError:
            return self
        import threading

        self._process = psutil.Process()
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if getattr(self, "_thread", None) is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
            self._thread = None
        return False


def save(name, results, outdir=None):
    """Write ``<outdir>/<name>.json`` with machine and command; return the path."""
    outdir = Path(outdir) if outdir is not None else DOCS_BENCH
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.json"
    payload = dict(
        benchmark=name, command=command(), machine=machine(), results=results
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_default) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")
    return path


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def pyplot():
    """matplotlib.pyplot with a non-interactive backend (a clear error if absent)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "the benchmark plots need matplotlib: pip install -e '.[docs]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def savefig(fig, name, outdir=None):
    """Save ``fig`` as ``<outdir>/<name>.png`` (default docs/bench) and close it."""
    import matplotlib.pyplot as plt

    out = (Path(outdir) if outdir else DOCS_BENCH) / f"{name}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")
    return out


def threads(n):
    """Limit torch (and BLAS through threadpoolctl) to ``n`` threads (None: all)."""
    if n is None:
        return
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


# --------------------------------------------------------------------------
# Arguments and the world
# --------------------------------------------------------------------------

# make_moa's column and target counts (lish-moa's), as --n-genes etc.
WORLD_COLUMNS = dict(n_genes=772, n_cells=100, n_scored=206, n_nonscored=402)
EFFECTS = ("opposed_modes", "variance_effect", "time_interaction")
# the arguments that make_world passes on to make_moa (when a script has them)
_WORLD_KEYS = ("n_samples", "n_test", *WORLD_COLUMNS, "signal", *EFFECTS)


def parser(doc):
    """An argument parser described by the first paragraph of ``doc``."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0])


def _flag(name):
    return "--" + name.replace("_", "-")


# the world of the studies in benchmarks/studies/, measured before the
# non-linear effects were make_moa's default (the catalogue had no drugs of
# 3-7 targets then, so a rerun draws other worlds of the same law)
EARLIER_WORLD = dict(
    signal=1.3, opposed_modes=0.0, variance_effect=0.0, time_interaction=0.0
)


def world_default(name):
    """make_moa's default value of the keyword argument ``name``."""
    from moa_sklearn.datasets import make_moa

    return inspect.signature(make_moa).parameters[name].default


def add_world_arguments(
    p, *, n_samples=23814, n_test=None, columns=False, signal=False, effects=False
):
    """The arguments of a make_moa world: --seed and, as asked, --n-samples
    (unless None), --n-test, the column and target counts, --signal and the
    non-linear effects (``signal``: True for make_moa's default, or a value).
    """
    if n_samples is not None:
        p.add_argument("--n-samples", type=int, default=n_samples, help="training rows")
    if n_test is not None:
        p.add_argument("--n-test", type=int, default=n_test, help="test rows")
    if columns:
        for name, default in WORLD_COLUMNS.items():
            p.add_argument(_flag(name), type=int, default=default)
    if signal is not False:
        default = world_default("signal") if signal is True else signal
        p.add_argument("--signal", type=float, default=default, help="make_moa's")
    if effects:
        for name in EFFECTS:
            p.add_argument(
                _flag(name), type=float, default=world_default(name), help="make_moa's"
            )
    p.add_argument("--seed", type=int, default=0, help="seed of the world and models")


def add_run_arguments(p, *, small=None, outdir=False):
    """--threads, and as asked --small (its help given) and --outdir."""
    p.add_argument("--threads", type=int, default=None, help="torch and BLAS threads")
    if small is not None:
        p.add_argument("--small", action="store_true", help=small)
    if outdir:
        p.add_argument("--outdir", default=None, help="default: docs/bench")


def world_kwargs(args, **overrides):
    """make_moa's keyword arguments from the world arguments, then ``overrides``."""
    kwargs = {k: getattr(args, k) for k in _WORLD_KEYS if hasattr(args, k)}
    return kwargs | {"random_state": args.seed} | overrides


def shown_kwargs(kwargs):
    """Keyword arguments as a call writes them (``a=1, b=2``)."""
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def make_world(args, **overrides):
    """The make_moa world of the arguments (and ``overrides``), timed."""
    from moa_sklearn.datasets import make_moa

    kwargs = world_kwargs(args, **overrides)
    t0 = time.perf_counter()
    world = make_moa(**kwargs)
    print(
        f"make_moa({shown_kwargs(kwargs)}): {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return world


def small_features(n_genes, n_cells):
    """make_moa_features' sizes for a world of few columns (else {}).

    The recipe's 600 + 50 components need 772 + 100 columns.
    """
    if n_genes >= 600 and n_cells >= 50:
        return {}
    return dict(
        n_components={"g": max(2, n_genes // 2), "c": max(2, n_cells // 2)},
        n_clusters={"g": 4, "c": 2},
    )


def net_params(epochs=None, threads=None, twostep_epochs=None):
    """make_moa_pipeline's model_params of the three nets.

    Keras and TabNet capped at ``epochs``, the two-step net at
    ``twostep_epochs`` per step (None: the recipe's), each net on
    ``threads`` threads (torch's, or TensorFlow's pools for Keras).
    """
    n_threads = {} if threads is None else {"n_threads": threads}
    twostep = {}
    if twostep_epochs is not None:
        twostep = dict(
            max_epochs_pretrain=twostep_epochs, max_epochs_finetune=twostep_epochs
        )
    return {
        "twostep": {**twostep, **n_threads},
        "keras": {"max_epochs": epochs, **n_threads},
        "tabnet": {"max_epochs": epochs, **n_threads},
    }


# --------------------------------------------------------------------------
# Drug-grouped CV and the loss table
# --------------------------------------------------------------------------


def treated(frame):
    """Boolean mask of the treated rows: not control rows by the package's rule
    (``ControlVehicleClassifier.control_mask``, the one place it is written)."""
    from moa_sklearn.ensemble import ControlVehicleClassifier

    return ~ControlVehicleClassifier(None).control_mask(frame)


def drug_folds(world, n_folds, seed):
    """The folds of ``DrugMultilabelStratifiedKFold(n_folds, random_state=seed)``."""
    from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold

    cv = DrugMultilabelStratifiedKFold(n_folds, random_state=seed)
    Y, groups = world.target.to_numpy(), world.groups.to_numpy()
    return list(cv.split(world.data, Y, groups))


def oof_prior(Y, is_treated, folds):
    """Out of fold: the training part's treated-row prevalence, controls 0."""
    prior = np.zeros(Y.shape)
    for train, test in folds:
        prevalence = Y[train][is_treated[train]].mean(axis=0)
        prior[test] = np.where(is_treated[test, None], prevalence, 0.0)
    return prior


def oof_predictions(make, X, Y, folds, fit_params=None, predict=None):
    """Out-of-fold predictions of a fresh ``make()`` per fold, and the seconds.

    ``fit_params(model, train)``: the fit's keyword arguments;
    ``predict(model, X)``: the probabilities (default ``predict_proba``).
    """
    t0 = time.perf_counter()
    P = np.full(Y.shape, np.nan)
    for train, test in folds:
        model = make()
        params = {} if fit_params is None else fit_params(model, train)
        model.fit(X.iloc[train], Y[train], **params)
        Xt = X.iloc[test]
        P[test] = model.predict_proba(Xt) if predict is None else predict(model, Xt)
    return P, time.perf_counter() - t0


def routed(groups, y_aux=None):
    """The fit parameters of a pipeline ending in a net, for oof_predictions.

    The training part's drug ids (drug-grouped inner validation) and, when
    given, its nonscored targets (pretraining).
    """

    def fit_params(pipe, train):
        step = pipe.steps[-1][0]
        params = {f"{step}__groups": groups[train]}
        if y_aux is not None:
            params[f"{step}__y_aux"] = y_aux[train]
        return params

    return fit_params


def score_table(
    Y, predictions, seconds=None, prior="constant prior", bayes="Bayes optimum"
):
    """Per model: loss, ratio to the prior, share of the prior-to-Bayes gap closed.

    The loss is the competition metric over all rows; with ``seconds``, each
    row also holds its model's seconds (None when not timed).
    """
    from moa_sklearn.metrics import mean_columnwise_log_loss

    loss = {k: mean_columnwise_log_loss(Y, v) for k, v in predictions.items()}
    p, b = loss[prior], loss[bayes]
    table = {}
    for k, v in loss.items():
        table[k] = dict(loss=v, ratio_to_prior=v / p, gap_closed=(p - v) / (p - b))
        if seconds is not None:
            table[k]["seconds"] = seconds.get(k)
    return table


def print_table(table, width=40):
    """The table of ``score_table``, one model a line."""
    print(f"{'model':{width}s} {'loss':>8s} {'/prior':>7s} {'gap closed':>10s} time")
    for k, r in table.items():
        t = "" if r.get("seconds") is None else f"{r['seconds']:5.0f} s"
        print(
            f"{k:{width}s} {r['loss']:8.5f} {r['ratio_to_prior']:7.3f} "
            f"{r['gap_closed']:10.2f} {t}",
            flush=True,
        )


def cv_table(world, folds, models, about, width=40):
    """Drug-grouped CV of ``models`` next to the constant prior and Bayes.

    ``models``: name -> (make, fit_params), as ``oof_predictions`` takes
    them. Prints each model's time, then the table (``about`` completes its
    title); returns the table.
    """
    X, Y = world.data, world.target.to_numpy()
    prior = oof_prior(Y, treated(X), folds)
    predictions = {
        "constant prior": np.clip(prior, 1e-5, 1 - 1e-5),
        "Bayes optimum": world.bayes_proba.to_numpy(),
    }
    seconds = {}
    for name, (make, fit_params) in models.items():
        predictions[name], seconds[name] = oof_predictions(
            make, X, Y, folds, fit_params
        )
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    print(
        f"\n{len(folds)}-fold drug-grouped CV, out-of-fold mean columnwise log loss "
        f"over all {len(Y)} rows (controls included); {about}"
    )
    table = score_table(Y, predictions, seconds)
    print_table(table, width)
    return table
