"""Run every benchmark, one after the other; write results and plots to docs/.

The core suite writes JSON (results, machine, command) and PNG plots to
``docs/bench/`` and regenerates the tables between the
``<!-- bench:begin -->`` / ``<!-- bench:end -->`` markers of
``docs/benchmarks.md``:

- ``quality``: drug-grouped 3-fold CV under both protocols (new compound,
  Kaggle) of the prior, the two plain baselines (logistic regression, the
  public recipe's net), each net, the blend and the Bayes optimum
  (``bench_quality.py``, about an hour on two cores; resumable);
- ``speed``: each net's epoch time vs the Kaggle loop, GFLOP/s vs the matmul
  peak (``bench_speed.py``, ~2 min);
- ``scaling``: fit time, memory and predict latency of the full pipeline at
  5k-40k rows, log-log slopes (``bench_pipeline.py``, ~8 min).
- ``recipe``: the default recipe at full size as a user runs it
  (``moa-sklearn fit``, ``predict_proba`` of 3,982 rows, a 5-fold ``moa-sklearn
  cv``): fit, predict and CV times and peak memory against the targets
  (``bench_recipe.py``; hours at the defaults, resumable).
- ``ablations_twostep``, ``ablations_keras``, ``ablations_tabnet``: variants
  of each net's defaults on the quality run's new-compound folds, next to
  its baselines (``ablations.py``, about 4-15 min a variant; resumable).

The text benchmarks (output saved as ``docs/bench/<name>.txt`` with the
machine and command on top): ``make_moa`` calibration and feature
transformer speed; with ``--studies``, also the studies of earlier
development steps, kept in ``benchmarks/studies/`` with their commands (the
suite above supersedes them): two-step speed and quality, Keras/TabNet,
blend holdout and the non-linear worlds.

Run them as documented (a quiet machine, one core, one thread)::

    taskset -c 0 python benchmarks/run_all.py --threads 1

``--only NAME ...`` runs some of them; ``--render`` only rewrites the tables
from the JSON files already in ``docs/bench/``; ``--smoke`` runs each at a
tiny size into ``--outdir`` (a check that the suite works, in a few
minutes; the test suite runs it).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent
DOCS_PAGE = HERE.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# name: (script, kind, full-size arguments, smoke arguments); "json" scripts
# take --outdir and write <name>.json + <name>.png, "text" ones print. Paths
# are relative to benchmarks/.
# The TabNet ablations' variants besides its defaults (``default``):
# ``pf_`` on the public recipe's features (no KMeans, no row statistics);
# ``old_`` and those without ``mixup`` / ``n_best_epochs`` of their own ran
# before those existed (their values then: no mixup, the best epoch alone).
_PF = "features__kmeans='passthrough',features__stats='passthrough'"
_OLD = "mixup=0.0,n_best_epochs=1"
_TABNET_VARIANTS = [
    "seeds3_weights:average_epochs='weights'",
    "oneseed_weights:n_seeds=1,average_epochs='weights'",
    "oneseed_proba:n_seeds=1",
    "oneseed_pertarget:n_seeds=1,average_epochs='per_target'",
    f"old_default:n_seeds=3,{_OLD}",
    f"old_oneseed:n_seeds=1,{_OLD}",
    f"publicfeatures:n_seeds=1,{_PF},{_OLD}",
    f"vbs128:n_seeds=1,virtual_batch_size=128,{_OLD}",
    f"nd64:n_seeds=1,n_d=64,n_a=64,{_OLD}",
    f"pf_nd16:n_seeds=1,n_d=16,n_a=16,{_PF},{_OLD}",
    f"pf_lr5e3:n_seeds=1,learning_rate=0.005,{_PF},{_OLD}",
    f"pf_decay:n_seeds=1,lr_factor=0.5,lr_patience=2,{_PF},{_OLD}",
    f"pf_seeds3:n_seeds=3,{_PF},{_OLD}",
    f"pf_wd1e4:n_seeds=1,weight_decay=1e-4,{_OLD},{_PF}",
    f"pf_bs256:n_seeds=1,batch_size=256,{_OLD},{_PF}",
    f"pf_mix05:n_seeds=1,mixup=0.5,n_best_epochs=1,{_PF}",
    f"pf_mix08:n_seeds=1,mixup=0.8,n_best_epochs=1,{_PF}",
    f"pf_best5:n_seeds=1,mixup=0.0,n_best_epochs=5,average_epochs='proba',{_PF}",
    f"pf_best10:n_seeds=1,mixup=0.0,n_best_epochs=10,average_epochs='proba',{_PF}",
    f"pf_swa5:n_seeds=1,mixup=0.0,n_best_epochs=5,average_epochs='weights',{_PF}",
    f"pf_mix05_best5:n_seeds=1,mixup=0.5,n_best_epochs=5,average_epochs='proba',{_PF}",
    f"pf_mix05_swa10:n_seeds=1,mixup=0.5,n_best_epochs=10,"
    f"average_epochs='weights',{_PF}",
    f"pf_mix05_best10:n_seeds=1,mixup=0.5,n_best_epochs=10,"
    f"average_epochs='proba',{_PF}",
]

BENCHMARKS = {
    "quality": ("bench_quality.py", "json", ["--folds", "3"], ["--small",
                "--folds", "2", "--epochs", "2", "--inner-folds", "2",
                "--workdir", "{outdir}/work"]),
    "speed": ("bench_speed.py", "json", [], ["--n-samples", "2000",
              "--n-features", "40", "--n-targets", "8", "--epochs", "2",
              "--small"]),
    "scaling": ("bench_pipeline.py", "json", [], ["--sizes", "600", "1200",
                "--n-test", "200", "--small", "--epochs", "1"]),
    "recipe": ("bench_recipe.py", "json", [], ["--small", "--n-samples", "300",
               "--n-test", "100", "--n-genes", "40", "--n-cells", "10",
               "--n-scored", "6", "--n-nonscored", "5", "--models", "twostep",
               "--inner-folds", "2", "--cv-folds", "2", "--epochs", "1",
               "--workdir", "{outdir}/recipe_work"]),
    "ablations_twostep": ("ablations.py", "json", ["--model", "twostep", "--folds",
                          "3", "--variants", "default", "nopowerset:powerset=0.0",
                          "publicfeatures:features__kmeans='passthrough',"
                          "features__stats='passthrough'",
                          "seed4layers:hidden_sizes=[1500,1250,1000,750],"
                          "powerset=0.0",
                          "seed4layers_publicfeatures:hidden_sizes=[1500,1250,"
                          "1000,750],powerset=0.0,features__kmeans='passthrough',"
                          "features__stats='passthrough'",
                          "seed4layers_finetune12:hidden_sizes=[1500,1250,1000,"
                          "750],powerset=0.0,max_epochs_finetune=12"],
                          ["--small", "--n-samples", "600", "--folds", "2",
                           "--variants", "default",
                           "narrow:hidden_sizes=[8],dropouts=0.1", "--workdir",
                           "{outdir}/work"]),
    "ablations_keras": ("ablations.py", "json", ["--model", "keras", "--folds", "3",
                        "--variants", "default",
                        "publicfeatures:features__kmeans='passthrough',"
                        "features__stats='passthrough'"],
                        ["--model", "keras", "--small", "--n-samples", "600",
                         "--folds", "2", "--variants", "default",
                         "narrow:hidden_sizes=[8]", "--workdir", "{outdir}/work"]),
    "ablations_tabnet": ("ablations.py", "json", ["--model", "tabnet", "--folds",
                         "3", "--variants", "default", *_TABNET_VARIANTS],
                        ["--model", "tabnet", "--small", "--n-samples", "600",
                         "--folds", "2", "--variants", "default",
                         "vbs8:virtual_batch_size=8", "--workdir",
                         "{outdir}/work"]),
    "make_moa": ("bench_make_moa.py", "text", ["--skip-mlp"], ["--n-samples",
                 "1500", "--skip-mlp"]),
    "features": ("bench_features.py", "text", ["--breakdown"], ["--n-samples",
                 "2000"]),
}  # fmt: skip
STUDIES = {
    "twostep_speed": ("studies/bench_twostep_speed.py", "text", ["--n-samples", "20000",
                      "--n-features", "1000", "--epochs", "2"], ["--n-samples",
                      "600", "--n-features", "50", "--epochs", "1", "--hidden",
                      "64", "32"]),
    "twostep_quality": ("studies/bench_twostep_quality.py", "text", ["--configs", "aux",
                        "no-pretrain", "--precisions", "bf16"], ["--n-samples",
                        "1200", "--n-genes", "40", "--n-cells", "10",
                        "--n-scored", "12", "--n-nonscored", "20", "--folds",
                        "3", "--epochs", "2", "--hidden", "64", "32",
                        "--skip-mlp"]),
    "keras_tabnet": ("studies/bench_keras_tabnet.py", "text", ["--epochs", "24"],
                     ["--n-samples", "1200", "--n-genes", "40", "--n-cells",
                      "10", "--n-scored", "12", "--n-nonscored", "20",
                      "--n-features", "50", "--folds", "3", "--epochs", "2",
                      "--small"]),
    "blend_holdout": ("studies/bench_blend_holdout.py", "text", ["--inner-folds",
                      "3", "--epochs", "24"], ["--n-samples", "1500", "--n-test",
                      "400", "--small", "--inner-folds", "2", "--epochs", "2"]),
    "nonlinear_world": ("studies/bench_nonlinear_world.py", "text", [],
                        ["--n-samples", "600"]),
    "epochs": ("studies/bench_epochs.py", "text", [], ["--small", "--n-samples",
               "600"]),
}  # fmt: skip
THREADED = {"quality", "speed", "scaling", "recipe", "features", "twostep_speed"}
THREADED |= {"ablations_twostep", "ablations_keras", "ablations_tabnet"}
THREADED |= {"twostep_quality", "keras_tabnet", "blend_holdout", "epochs"}


def run(name, spec, args, outdir):
    """Run one benchmark in a fresh process; return its wall seconds."""
    script, kind, full, smoke = spec
    argv = [a.format(outdir=outdir) for a in (smoke if args.smoke else full)]
    if args.threads is not None and name in THREADED:
        argv += ["--threads", str(args.threads)]
    if kind == "json" and Path(outdir).resolve() != _common.DOCS_BENCH.resolve():
        argv += ["--outdir", str(outdir)]  # (the default is docs/bench)
    cmd = [sys.executable, str(HERE / script), *argv]
    shown = " ".join(["python", f"benchmarks/{script}", *argv])
    print(f"== {name}: {shown}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=kind == "text", text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        if kind == "text":
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"benchmark {name!r} failed (exit {proc.returncode})")
    if kind == "text":
        m = _common.machine()
        header = [
            f"$ {shown}",
            f"# {m['date']}; {m['cpu']} (flags {' '.join(m['cpu_flags'])}; "
            f"bf16 native: {m['bf16_native']}), cores used {m['cores_used']} of "
            f"{m['logical_cores']}; git {m['git_commit']}",
            "# " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
            "",
        ]
        out = Path(outdir) / f"{name}.txt"
        out.write_text("\n".join(header) + proc.stdout)
        print(proc.stdout[-1500:], flush=True)
        print(f"wrote {out}")
    print(f"== {name}: {seconds:.0f} s", flush=True)
    return seconds


# --------------------------------------------------------------------------
# the tables of docs/benchmarks.md
# --------------------------------------------------------------------------


def _load(outdir, name):
    path = Path(outdir) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _machine_line(payload):
    m = payload["machine"]
    v = m["versions"]
    libs = ", ".join(
        f"{k} {v[k]}"
        for k in ("torch", "scikit-learn", "numpy", "keras", "tensorflow-cpu")
        if k in v
    )
    flags = m.get("cpu_flags")
    isa = "CPU flags not recorded" if flags is None else "flags " + " ".join(flags)
    if m.get("bf16_native") is False:
        isa += " (bf16 not native: the nets train in fp32)"
    return (
        f"Machine: {m['cpu']} ({isa}), {len(m['cores_used'] or [])} of "
        f"{m['logical_cores']} cores used, {m['memory_gib']} GiB, "
        f"{'GPU ' + m['gpu'] if m.get('gpu') else 'no GPU'}; "
        f"Python {m['python']}, {libs}; git {m['git_commit']}, {m['date'][:10]}."
    )


def _quality(payload, image, class_defaults=None):
    """The quality tables; ``class_defaults`` ({protocol: {net label: row}},
    from :func:`_class_defaults`) adds each net at its class defaults."""
    r = payload["results"]
    world = ", ".join(f"{k}={v}" for k, v in r["world"].items())
    caps = [f"{n} {e}" for n, e in r["epochs"].items() if e is not None]
    first = next(iter(r["protocols"].values()))
    overrides = first.get("recipe_overrides")
    settings = (
        "at their defaults"
        if overrides is None
        else "as the recipe sets them (`make_moa_pipeline(profile='full')`: "
        "their defaults" + (f", but {', '.join(overrides)})" if overrides else ")")
    )
    lines = [
        f"**Quality.** `make_moa({world})`, {r['rows']:,} rows; {r['folds']} "
        f"folds under each protocol; {r['metric']}, out of fold. The nets are "
        f"the ones refitted inside the blend on each training fold (same "
        f"features and control handling), {settings}"
        + (f" except the epochs capped ({', '.join(caps)})" if caps else "")
        + f"; {_blend_weights_sentences(r)} The two plain "
        f"baselines (`benchmarks/baselines.py`) are fitted on the same folds.",
        "",
    ]
    for protocol, p in r["protocols"].items():
        lines += _quality_protocol(protocol, p, (class_defaults or {}).get(protocol))
    commands = {p.get("command", payload["command"]) for p in r["protocols"].values()}
    if len(commands) > 1:
        # protocols measured by separate runs (bench_quality keeps the others')
        return lines + [
            "",
            f"![CV log loss of each model]({image})",
            "",
            "```bash",
            *(
                f"{p['command']}  # {protocol}, {p['date'][:10]}"
                for protocol, p in r["protocols"].items()
            ),
            "```",
            "",
        ]
    return lines + _figure_and_command(payload, image, "CV log loss of each model")


_INNER_CV = "StackingBlend, weights on a {}-fold inner CV"
_VALIDATION = "StackingBlend, weights on the nets' validation drugs"
_ORACLE = "StackingBlend, weights fitted on the test fold (a bound)"


def _blend_weights_sentences(r):
    """Where each protocol's blend took its weights from: one sentence if
    they ran alike, else one per protocol."""
    per = {
        name: p.get("inner_folds", r.get("inner_folds"))
        for name, p in r["protocols"].items()
    }
    if len(set(per.values())) == 1:
        return _blend_weights_from(next(iter(per.values())), r["protocols"])
    return " ".join(
        f"{'uU'[i > 0]}nder the {name} protocol, "
        + _blend_weights_from(k, {name: r["protocols"][name]})
        for i, (name, k) in enumerate(per.items())
    )


def _blend_weights_from(k, protocols):
    """Where a quality run's blend took its weights from (a sentence): its
    blend cv ``k`` and the ``protocols`` it ran under."""
    if k == "validation":
        return (
            "the blend's weights are chosen on the nets' own validation drugs "
            "(`StackingBlend(cv='validation')`: each net fitted once per "
            "training fold)."
        )
    inner = _INNER_CV.format(k)
    if any(inner in p["table"] for p in protocols.values()):
        return (
            f"the CV ran the blend with a drug-grouped inner CV of {k} folds of "
            f'each training fold (row "{inner}"); the recipe\'s row is the '
            "same refitted nets with the weights chosen on their own "
            "validation drugs, as `StackingBlend(cv='validation')` chooses them."
        )
    return (
        f"the blend's weights come from a drug-grouped inner CV of {k} folds "
        "of each training fold."
    )


_NET_LABELS = {
    "twostep": "TwoStepNetClassifier",
    "keras": "KerasNetClassifier",
    "tabnet": "TabNetMultilabelClassifier",
}


def _shown_name(name, overrides):
    """A table row's name, a net's recipe settings that are not its class
    defaults after it: ``TabNetMultilabelClassifier (n_seeds=1)``."""
    per_net = {}
    for item in overrides or ():
        net, _, setting = item.partition(" ")
        per_net.setdefault(_NET_LABELS.get(net, net), []).append(setting)
    for label, settings in per_net.items():
        if name.startswith(label):
            return name.replace(label, f"{label} ({', '.join(settings)})", 1)
    return name


def _class_defaults(quality, ablations):
    """Each net at its class defaults, fitted alone: the ``default`` row of
    its ablation run on the quality run's world and folds, per protocol
    (``{protocol: {net label: row}}``); runs on other worlds or folds are not
    comparable and give nothing."""
    if quality is None:
        return {}
    q = quality["results"]
    found = {}
    for payload in ablations:
        r = payload["results"]
        same = q["protocols"].get(r["protocol"], {})
        row = r["table"].get(f"{r['model']} default")
        if (
            row is None
            or r["variants"].get("default") != {}
            or q["world"] != r["world"]
            or same.get("cv") != r["cv"]
        ):
            continue
        found.setdefault(r["protocol"], {})[r["model"]] = row
    # the nets in the recipe's order, whatever the files' order
    return {
        protocol: {_NET_LABELS[n]: rows[n] for n in _NET_LABELS if n in rows}
        for protocol, rows in found.items()
    }


def _quality_protocol(protocol, p, class_defaults=None):
    """One protocol's table and the blend's verdict; ``class_defaults``
    ({net label: row}) adds a row for each net the recipe sets otherwise
    and a sentence on every net at its class defaults."""
    class_defaults = class_defaults or {}
    overrides = p.get("recipe_overrides")
    # nets whose recipe settings are not their class defaults get a row
    extra = {
        f"{label} at its class defaults\u2021": row
        for label, row in class_defaults.items()
        if _shown_name(label, overrides) != label
    }
    lines = [
        f"*{protocol}* (`{' '.join(p['cv'].split())}`):",
        "",
        "| model | loss | / prior | gap closed | CV time (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    borrowed = p.get("baselines_from")
    rows = {**p["table"], **extra}
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["loss"]):
        t = (
            ""
            if row.get("seconds") is None or name in extra
            else f"{row['seconds']:.0f}"
        )
        bold = "**" if name == "StackingBlend (the recipe)" else ""
        mark = "\\*" if borrowed and name.startswith(("logistic", "plain")) else ""
        shown = name if name in extra else _shown_name(name, overrides)
        lines.append(
            f"| {bold}{shown}{mark}{bold} | {bold}{row['loss']:.5f}{bold} | "
            f"{row['ratio_to_prior']:.3f} | {row['gap_closed']:.2f} | {t} |"
        )
    if borrowed:
        lines += [
            "",
            f"\\* fitted by an earlier run on the same world and folds "
            f"({borrowed['date'][:10]}: `{borrowed['command']}`); the plain "
            "baselines do not depend on the package's nets.",
        ]
    if extra:
        lines += [
            "",
            "\u2021 fitted alone at the net's class defaults: the `default` row "
            "of its ablation table below (same world, same folds).",
        ]
    verdict = "beats" if p["blend_beats_best_net"] else "does **not** beat"
    folds = p.get("fold_scores") or []
    wins = sum(
        f["StackingBlend (the recipe)"]
        < min(v for k, v in f.items() if not k.startswith("StackingBlend"))
        for f in folds
    )
    names = list(p["blend_weights"][0])
    mean_w = ", ".join(
        f"{n} {sum(w[n] for w in p['blend_weights']) / len(p['blend_weights']):.2f}"
        for n in names
    )
    table = p["table"]
    baselines = [k for k in table if k.startswith(("logistic", "plain"))]
    nets = [k for k in table if k.endswith("Classifier")]
    ahead = [
        n for n in nets if all(table[n]["loss"] < table[b]["loss"] for b in baselines)
    ]
    behind = [n for n in nets if n not in ahead]
    if baselines:
        lines += [
            "",
            "Nets ahead of both plain baselines"
            + (", as the recipe fits them" if class_defaults else "")
            + f": {', '.join(_shown_name(n, overrides) for n in ahead) or 'none'}"
            + (
                f"; not: {', '.join(_shown_name(n, overrides) for n in behind)}."
                if behind
                else "."
            ),
        ]
        if class_defaults:
            beats = [
                n
                for n, row in class_defaults.items()
                if all(row["loss"] < table[b]["loss"] for b in baselines)
            ]
            lost = [n for n in class_defaults if n not in beats]
            lines[-1] += (
                " At their class defaults, each fitted alone (the `default` rows "
                "of the ablation tables below): "
                + ", ".join(
                    f"{n} {row['loss']:.5f}" for n, row in class_defaults.items()
                )
                + "; ahead of both: "
                + ("all of them" if not lost else ", ".join(beats) or "none")
                + (f"; not: {', '.join(lost)}." if lost else ".")
            )
    folded = [k for k in table if k.endswith(", fold models")]
    if folded:
        refits = {k: k.removesuffix(", fold models") for k in folded}
        pairs = ", ".join(
            f"{refits[k].removesuffix(' (the recipe)')} {table[k]['loss']:.5f} "
            f"against {table[refits[k]]['loss']:.5f}"
            for k in folded
        )
        lines += [
            "",
            "Predicting with the mean of the inner-fold models (`refit=False`) "
            f"instead of the refits, from the same fits: {pairs}.",
        ]
    stage = "StackingBlend, per-target second stage"
    weights = "StackingBlend, per-target weights"
    # the blend whose inner out-of-fold predictions the second stage, the
    # per-target weights and the blends without a net are fitted on
    inner = next((k for k in table if k.endswith("-fold inner CV")), None)
    ran = inner or "StackingBlend (the recipe)"
    if stage in table:
        lines += [
            "",
            "The learned second stage (`final_estimator='per_target'`: per "
            "target, a logistic regression on the nets' logits, fitted on the "
            + (
                "nets' predictions on their validation drugs, a tenth of the rows,"
                if p.get("inner_folds") == "validation"
                else "blend's inner out-of-fold predictions,"
            )
            + " applied to the same nets' "
            f"test-fold predictions): {table[stage]['loss']:.5f} against "
            f"{table[ran]['loss']:.5f} for the weighted average"
            + (" (its weights on the same predictions)" if inner else "")
            + (
                f" and {table[weights]['loss']:.5f} with per-target weights "
                "(`weights='per_target'`)."
                if weights in table
                else "."
            ),
        ]
    held = inner or (_VALIDATION if _VALIDATION in table else None)
    if held:
        recipe = table["StackingBlend (the recipe)"]["loss"]
        other = table[held]["loss"]
        lines += [
            "",
            "Blend weights from the same refitted nets: chosen on their own "
            "validation drugs (`cv='validation'`, one fit per net) "
            + (
                f"{recipe:.5f}, on the inner CV's out-of-fold predictions {other:.5f}"
                if inner
                else f"{other:.5f}, on the inner CV's out-of-fold predictions "
                f"{recipe:.5f}"
            )
            + (
                f"; fitted on the test fold itself (no choice of weights can "
                f"do better) {table[_ORACLE]['loss']:.5f}."
                if _ORACLE in table
                else "."
            ),
        ]
    without = {k: v for k, v in table.items() if k.startswith("StackingBlend without ")}
    if without:
        blend = table[ran]["loss"]
        pairs = ", ".join(
            f"without {k.rsplit(' ', 1)[1]} {v['loss']:.5f}" for k, v in without.items()
        )
        lines += [
            "",
            "The blend of the other nets, its weights chosen again on the same "
            f"inner out-of-fold predictions, from the same fits: {pairs}; "
            f"all three {blend:.5f}.",
        ]
    if p.get("defaults_changed_since"):
        lines += [
            "",
            f"Measured at earlier defaults of the nets (since changed: "
            f"{p['defaults_changed_since']}); to be rerun.",
        ]
    memory = p.get("peak_rss_mib")
    return lines + [
        "",
        f"The blend {verdict} its best net ({p['best_net']})"
        + (f", and every net in {wins} of {len(folds)} folds" if folds else "")
        + f"; blend weights (mean over the folds): {mean_w}. Full pipeline CV "
        f"wall time ({len(p['fold_fit_seconds'])} fits of the whole recipe, each "
        + (
            "with its inner CV"
            if p.get("blend_cv", 2) != "validation"
            else "with each net fitted once"
        )
        + f"): {p['pipeline_cv_seconds'] / 60:.0f} min"
        + (
            f"; peak memory of the CV process {memory / 1024:.1f} GiB."
            if memory
            else "."
        ),
        "",
    ]


def _speed(payload, image):
    r = payload["results"]
    d, peaks = r["data"], r["matmul_peak_gflops"]
    lines = [
        f"**Speed.** {d['n_samples']:,} rows x {d['n_features']:,} features, "
        f"{d['n_targets']} labels, {d['n_valid']} of the rows inner "
        f"validation, batch {d['batch_size']}, {_threads(r['threads'])}; "
        f"median seconds per epoch (training + validation) after the first. "
        f"Measured matmul peaks (2048^3): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 "
        f"{_gflops(peaks.get('bf16'))}. Peak memory of the run "
        f"{r['peak_rss_mib']:.0f} MiB.",
        "",
        "| net | precision | s / epoch | vs Kaggle loop | GFLOP/s | % of peak |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in r["methods"].items():
        if row.get("unavailable"):
            why = row["unavailable"]
            lines.append(f"| {name} | {row['precision']} | unavailable: {why} ||||")
            continue
        up = row.get("speedup_vs_kaggle")
        pk = peaks.get(row["precision"])
        share = "" if not pk else f"{100 * row['gflops'] / pk:.0f}%"
        lines.append(
            f"| {name} | {row['precision']} | {row['epoch_seconds']:.2f} | "
            f"{'' if up is None else f'{up:.2f}x'} | {row['gflops']:.0f} | "
            f"{share} |"
        )
    return lines + _figure_and_command(payload, image, "seconds per epoch")


def _scaling(payload, image):
    r = payload["results"]
    lines = [
        f"**Scaling.** `make_moa_pipeline(profile={r['profile']!r})` with "
        f"{r['inner_folds']} inner folds, every net capped at {r['epochs']} "
        f"epochs (the nets' part of a fit grows linearly with the epochs), "
        f"{_threads(r['threads'])}; "
        f"each size in a fresh process; predict = `predict_proba` of the "
        f"world's test rows, best of 3.",
        "",
        "| training rows | fit (s) | predict (s) | test rows | peak memory (MiB) "
        "| added by the fit (MiB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in r["sizes"]:
        lines.append(
            f"| {row['n_samples']:,} | {row['fit_seconds']:.1f} | "
            f"{row['predict_seconds']:.2f} | {row['n_test']:,} | "
            f"{row['peak_rss_mib']:.0f} | {row['fit_memory_mib']:.0f} |"
        )
    lines += [
        "",
        f"Log-log slopes: fit time {r['fit_time_slope']:.2f}, peak memory "
        f"{r['peak_memory_slope']:.2f}, memory added by the fit "
        f"{r['fit_memory_slope']:.2f}.",
    ]
    return lines + _figure_and_command(payload, image, "fit time and memory vs rows")


# how the targets of the recipe benchmark read in its table
_TARGET_NAMES = {
    "fit_seconds": ("one fit on all rows", "min"),
    "cv_seconds": ("5-fold CV (the recipe's fits)", "min"),
    "peak_memory_mib": ("peak memory", "GiB"),
    "predict_seconds": ("predict_proba of the test rows", "s"),
}


def _amount(value, unit):
    if unit == "min":
        return f"{value / 60:.1f} min"
    if unit == "GiB":
        return f"{value / 1024:.1f} GiB"
    return f"{value:.2f} s"


def _recipe_runs(r):
    """This run and the kept ones (other ``n_jobs``), one process first."""
    runs = [r, *r.get("other_runs", [])]
    return sorted(runs, key=lambda run: _resolved_jobs(run) not in (None, 1))


def _resolved_jobs(run):
    n_jobs = run["settings"].get("n_jobs")
    if n_jobs == "auto":
        return -1 if run["settings"]["profile"] == "full" else None
    return n_jobs


def _run_header(run):
    """A column of the recipe's table: how its fits ran."""
    n_jobs = _resolved_jobs(run)
    given = run["settings"].get("n_jobs")
    name = f"n_jobs={n_jobs}" + (
        " (auto, the CLI's default)" if given == "auto" else ""
    )
    if n_jobs in (None, 1):
        return f"{name}: one process"
    threads = (run.get("fit") or {}).get("threads_per_fit")
    each = f", {threads} thread(s) per net" if threads else ""
    return f"{name}: the blend's fits in parallel{each}"


# the steps a figure of the recipe's table comes from
_STEPS_OF = {
    "fit_seconds": ("fit",),
    "predict_seconds": ("fit",),
    "cv_seconds": ("cv",),
    "peak_memory_mib": ("fit", "cv"),
}
_STALE = "\u00a7"


def _stale_changes(run, key=None):
    """What changed in the recipe's nets since the steps of ``run`` (those
    behind the figure ``key``, or all) were measured."""
    steps = _STEPS_OF[key] if key else ("fit", "cv")
    return [
        run[step]["settings_changed_since"]
        for step in steps
        if (run.get(step) or {}).get("settings_changed_since")
    ]


def _recipe_cell(run, key):
    row = run.get("targets", {}).get(key)
    if row is None:
        return "not run"
    what, unit = _TARGET_NAMES[key]
    value = _amount(row["value"], unit)
    stale = _STALE if _stale_changes(run, key) else ""
    return f"{value}{stale}" if row["met"] else f"**{value}**{stale} (over)"


def _recipe(payload):
    """The default recipe's times and memory against the issue's targets, one
    column per ``n_jobs`` measured."""
    r = payload["results"]
    m = payload["machine"]
    s = r["settings"]
    world = ", ".join(f"{k}={v}" for k, v in r["world"].items())
    bf16 = (
        "bf16 native: the two-step net trains in bf16"
        if r["bf16_native"]
        else ("bf16 not native: every net trains in fp32")
    )
    params = {k: v for k, v in s.items() if k == "model_params"}
    lines = [
        f"**The default recipe at full size.** `moa-sklearn make-data` "
        f"(`{world}`), then `make_moa_pipeline(profile={s['profile']!r})` "
        + (
            "at its defaults"
            if not params
            else "with " + ", ".join(f"{k}={v}" for k, v in s["model_params"].items())
        )
        + f" as `moa-sklearn fit` and `cv` run it, {_threads(r['threads'])}, "
        f"{m['logical_cores']} cores; {bf16}. Each step in a fresh process. "
        "Peak memory: the largest of the main process's peak and the memory "
        "of the main process and its workers summed (sampled every 0.5 s; "
        "proportional set sizes, PSS: a page that k processes share, such as "
        "the engines' libraries, counts 1/k in each).",
        "",
    ]
    runs = _recipe_runs(r)
    keys = [
        k for k in _TARGET_NAMES if any(k in run.get("targets", {}) for run in runs)
    ]
    header = [_run_header(run) for run in runs]
    lines += [
        "| measure | " + " | ".join(header) + " | target |",
        "| --- | " + " | ".join("---" for _ in runs) + " | --- |",
    ]
    for key in keys:
        what, unit = _TARGET_NAMES[key]
        target = next(
            run["targets"][key]["target"]
            for run in runs
            if key in run.get("targets", {})
        )
        cells = " | ".join(_recipe_cell(run, key) for run in runs)
        lines.append(f"| {what} | {cells} | {_amount(target, unit)} |")
    changes = list(dict.fromkeys(c for run in runs for c in _stale_changes(run)))
    if changes:
        lines += [
            "",
            f"{_STALE} measured by a run whose nets' settings differ from the "
            "installed package's or were not recorded "
            f"({'; '.join(changes)}); to be rerun.",
        ]
    for run, name in zip(runs, header):
        lines += _recipe_run_text(run, name)
    commands = []
    for run in runs:
        for step in ("fit", "cv"):
            c = (run.get(step) or {}).get("bench_command", payload["command"])
            if c not in commands:
                commands.append(c)
    return lines + ["", "```bash", *commands, "```", ""]


def _with_workers(pss, rss):
    """The memory of a step's process tree, as its record has it."""
    if pss is None:
        return ""
    if rss is None:  # records before PSS was sampled: resident sizes summed
        return f", with its workers (resident sizes summed) {pss / 1024:.1f} GiB"
    return (
        f", with its workers {pss / 1024:.1f} GiB (PSS; resident sizes summed "
        f"{rss / 1024:.1f} GiB)"
    )


def _recipe_run_text(run, name):
    """The sentences under the recipe's table for one run."""
    fit, cv = run.get("fit"), run.get("cv")
    workers = _resolved_jobs(run) not in (None, 1)
    lines = []
    if fit:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in fit["blend_weights"].items())
        tree = fit.get("peak_memory_fit_tree_mib")
        tree_rss = fit.get("peak_memory_fit_tree_rss_mib")
        lines += [
            "",
            f"{name}, the fit: "
            + (
                "blend weights chosen on the nets' own validation drugs (each "
                "net fitted once)"
                if fit["inner_folds"] == "validation"
                else f"{fit['inner_folds']} inner folds (each net fitted "
                f"{fit['inner_folds'] + 1} times)"
            )
            + f", blend weights {weights}; test "
            f"rows' log loss {fit['test_loss']:.5f} (Bayes "
            f"{fit['test_bayes_loss']:.5f}); peak memory of the fitting "
            f"process {fit['peak_memory_fit_mib'] / 1024:.1f} GiB"
            + (_with_workers(tree, tree_rss) if workers else "")
            + "; "
            + (
                "in a fresh process, as `moa-sklearn predict` runs, "
                if fit.get("predict_process") == "fresh"
                else "in the process that fitted, "
            )
            + f"loading the model file ({fit['model_file_mib']:.0f} MiB) "
            f"{fit['load_seconds']:.1f} s, the first `predict_proba` "
            f"{fit['first_predict_seconds']:.2f} s, then the best of 3 "
            f"{fit['predict_seconds']:.2f} s.",
        ]
    if cv:
        folds = ", ".join(f"{t / 60:.1f}" for t in cv["fold_seconds"])
        sc = cv["scores"]
        tree = cv.get("peak_memory_tree_mib")
        tree_rss = cv.get("peak_memory_tree_rss_mib")
        lines += [
            "",
            f"{name}, the CV: {cv['folds']} folds, {cv['protocol']} protocol, the "
            f"recipe's fits {folds} min per fold"
            + (
                f" ({cv['this_run_seconds'] / 60:.1f} min for the whole run, "
                "which also fits the command's logistic baseline and predicts)"
                if cv.get("folds_this_run") == list(range(cv["folds"]))
                else ""
            )
            + "; out-of-fold log loss "
            f"{sc['score']:.5f} (prior {sc['prior_score']:.5f}"
            + (
                f", logistic-regression baseline {sc['baseline_score']:.5f}"
                if sc.get("baseline_score") is not None
                else ""
            )
            + (
                f", Bayes {sc['bayes_score']:.5f}"
                if sc.get("bayes_score") is not None
                else ""
            )
            + f"); peak memory of the CV process "
            f"{cv['peak_memory_mib'] / 1024:.1f} GiB"
            + (_with_workers(tree, tree_rss) if workers else "")
            + ".",
        ]
    elif fit:
        lines += ["", f"{name}: the 5-fold CV was not run (`--steps fit`)."]
    return lines


def _gflops(peak):
    return "unavailable (not native here)" if peak is None else f"{peak:.0f} GFLOP/s"


def _threads(n):
    return "default threads" if n is None else f"{n} thread{'s' * (n != 1)}"


def _figure_and_command(payload, image, alt):
    return [
        "",
        f"![{alt}]({image})",
        "",
        "```bash",
        payload["command"],
        "```",
        "",
    ]


def _ablations(payload, quality=None):
    """One net's ablation table; baselines taken from the quality run of the
    same world and folds when the ablation run skipped them."""
    r = payload["results"]
    table = dict(r["table"])
    borrowed = []
    if not any(k.startswith("logistic") for k in table) and quality is not None:
        q = quality["results"]
        same = q["protocols"].get(r["protocol"], {})
        if q["world"] == r["world"] and same.get("cv") == r["cv"]:
            for k, row in same["table"].items():
                if k.startswith(("logistic", "plain")):
                    table[k] = row
                    borrowed.append(k)
    world = ", ".join(f"{k}={v}" for k, v in r["world"].items())
    lines = [
        f"**Ablations of the {r['model']} net** (*{r['protocol']}*, "
        f"`{' '.join(r['cv'].split())}`; `make_moa({world})`; {r['metric']}, "
        f"out of fold). Each variant is the net as the recipe fits it "
        f"(`make_moa_features()`, behind `ControlVehicleClassifier`); best "
        f"epoch per step and fold, on held-out drugs.",
        "",
        "| model | settings | loss | / prior | gap closed | best epochs | time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    prefix = f"{r['model']} "
    # variant -> index of the earlier run that fitted it (marked with daggers)
    earlier = {
        v: i for i, run in enumerate(r.get("earlier_runs", [])) for v in run["variants"]
    }
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]["loss"]):
        variant = name[len(prefix) :] if name.startswith(prefix) else None
        params = r["variants"].get(variant) if variant is not None else None
        settings = (
            ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            if params is not None
            else ""
        )
        best = "; ".join(
            ", ".join(fold) for fold in r.get("best_epochs", {}).get(name, [])
        )
        t = "" if row.get("seconds") is None else f"{row['seconds']:.0f}"
        mark = "*" if name in borrowed else ""
        mark += "\u2020" * (1 + earlier.get(variant, -1)) if variant else ""
        lines.append(
            f"| {name}{mark} | {settings} | {row['loss']:.5f} | "
            f"{row['ratio_to_prior']:.3f} | {row['gap_closed']:.2f} | {best} | {t} |"
        )
    if borrowed:
        lines += [
            "",
            "\\* from the quality run above: same world, same folds.",
        ]
    lines += ["", "```bash", payload["command"], "```", ""]
    for i, run in enumerate(r.get("earlier_runs", [])):
        lines += [
            f"{chr(0x2020) * (i + 1)} fitted by an earlier run on the same "
            f"world and folds ({run['machine'].get('date', '')[:10]}; "
            f"{run['machine'].get('cpu', '')}):",
            "",
            "```bash",
            run["command"],
            "```",
            "",
        ]
    return lines


def render(outdir):
    """The markdown of the benchmark tables from the JSON files in ``outdir``."""
    parts = []
    first = None
    ablations = [
        json.loads(path.read_text())
        for path in sorted(Path(outdir).glob("ablations_*.json"))
    ]
    quality = _load(outdir, "quality")
    for name, fn in (("quality", _quality), ("speed", _speed), ("scaling", _scaling)):
        payload = _load(outdir, name)
        if payload is None:
            continue
        first = first or payload
        extra = {"class_defaults": _class_defaults(quality, ablations)}
        parts += fn(
            payload, f"bench/{name}.png", **(extra if name == "quality" else {})
        )
    payload = _load(outdir, "recipe")
    if payload is not None:
        first = first or payload
        parts += _recipe(payload)
    for payload in ablations:
        first = first or payload
        parts += _ablations(payload, quality)
    if first is None:
        return ""
    head = [
        _machine_line(first),
        "Raw results (with the machine and command of each) are in "
        "`docs/bench/*.json`; `python benchmarks/run_all.py --render` rewrites "
        "this part from them.",
        "",
    ]
    return "\n".join(head + parts).rstrip() + "\n"


def write_docs(outdir):
    """Replace the marked part of docs/benchmarks.md (or write results.md)."""
    text = render(outdir)
    if Path(outdir).resolve() != _common.DOCS_BENCH.resolve():
        out = Path(outdir) / "results.md"
        out.write_text(text)
        print(f"wrote {out}")
        return out
    page = DOCS_PAGE.read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{DOCS_PAGE} lacks the {BEGIN} / {END} markers")
    head, rest = page.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOCS_PAGE.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")
    print(f"wrote {DOCS_PAGE}")
    return DOCS_PAGE


def main(argv=None):
    parser = _common.parser(__doc__)
    names = [*BENCHMARKS, *STUDIES]
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME")
    parser.add_argument("--studies", action="store_true", help="the long studies too")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--render", action="store_true", help="only the tables")
    parser.add_argument("--outdir", default=None, help="default: docs/bench")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir) if args.outdir else _common.DOCS_BENCH
    if args.smoke and args.outdir is None:
        parser.error("--smoke writes to --outdir (not over the documented figures)")
    outdir.mkdir(parents=True, exist_ok=True)
    if not args.render:
        selected = {**BENCHMARKS, **(STUDIES if args.studies else {})}
        if args.only:
            selected = {k: {**BENCHMARKS, **STUDIES}[k] for k in args.only}
        total = {name: run(name, spec, args, outdir) for name, spec in selected.items()}
        print("wall seconds:", {k: round(v) for k, v in total.items()})
    write_docs(outdir)


if __name__ == "__main__":
    main()
