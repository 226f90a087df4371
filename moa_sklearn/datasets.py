"""lish-moa data: the Kaggle file layout, and a synthetic world with known optimum.

- :func:`load_moa` reads the competition's files from a folder.
- :func:`make_moa` generates a world in the same layout whose Bayes-optimal
  predictions are known exactly (``bayes_proba``).
- :func:`write_moa` writes a Bunch to a folder in the Kaggle layout, so that
  :func:`load_moa` reads it back.
"""

import itertools
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, solve_triangular
from scipy.special import logsumexp
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_moa", "make_moa", "write_moa"]

TRAIN_FEATURES = "train_features.csv"
TRAIN_SCORED = "train_targets_scored.csv"
TRAIN_NONSCORED = "train_targets_nonscored.csv"
TRAIN_DRUG = "train_drug.csv"
TEST_FEATURES = "test_features.csv"
SAMPLE_SUBMISSION = "sample_submission.csv"
# every file of the layout; the last two (the test rows) are optional
_KAGGLE_FILES = (
    TRAIN_FEATURES,
    TRAIN_SCORED,
    TRAIN_NONSCORED,
    TRAIN_DRUG,
    TEST_FEATURES,
    SAMPLE_SUBMISSION,
)

CATEGORICAL_COLUMNS = ["cp_type", "cp_time", "cp_dose"]
CP_TYPES = ("trt_cp", "ctl_vehicle")
CONTROL = "ctl_vehicle"
_FEATURE_RE = re.compile(r"^(g|c)-(\d+)$")
# pandas 3 parses floats exactly by default (and deprecates the option); older
# pandas needs "round_trip" so that write_moa -> load_moa is lossless
_READ_CSV_KWARGS = (
    {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
)


# --------------------------------------------------------------------------
# Reading the Kaggle layout
# --------------------------------------------------------------------------


def _read_csv(folder, name, required=True):
    path = folder / name
    if not path.is_file():
        if required:
            raise FileNotFoundError(
                f"lish-moa file {name!r} is missing from folder {str(folder)!r}."
            )
        return None
    try:
        frame = pd.read_csv(path, **_READ_CSV_KWARGS)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{name}: the file is empty (no header, no rows), in folder "
            f"{str(folder)!r}."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{name}: cannot be read as CSV ({e}).") from None
    if len(frame) == 0:
        raise ValueError(
            f"{name}: the file has no rows (only a header line), in folder "
            f"{str(folder)!r}."
        )
    if "sig_id" not in frame.columns:
        raise ValueError(f"{name}: column 'sig_id' is missing.")
    duplicated = frame["sig_id"].duplicated()
    if duplicated.any():
        examples = frame.loc[duplicated, "sig_id"].head(3).tolist()
        raise ValueError(
            f"{name}: {int(duplicated.sum())} duplicate sig_id values, e.g. {examples}."
        )
    return frame.set_index("sig_id")


def _check_feature_columns(frame, name):
    """Check the feature columns of a features file; return them in file order."""
    missing = [c for c in CATEGORICAL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}.")
    numeric = [c for c in frame.columns if c not in CATEGORICAL_COLUMNS]
    extra = [c for c in numeric if not _FEATURE_RE.match(c)]
    if extra:
        raise ValueError(
            f"{name}: unexpected column(s) {extra[:5]}; expected sig_id, "
            f"{', '.join(CATEGORICAL_COLUMNS)}, then g-<i> and c-<i> columns."
        )
    for prefix in ("g", "c"):
        idx = sorted(int(c[2:]) for c in numeric if c.startswith(prefix + "-"))
        gaps = sorted(set(range(len(idx))) - set(idx))
        if gaps:
            raise ValueError(
                f"{name}: missing column(s) {[f'{prefix}-{i}' for i in gaps[:5]]} "
                f"(the {prefix}- columns must be numbered 0..{len(idx) - 1})."
            )
    if not numeric:
        raise ValueError(f"{name}: no g-<i> or c-<i> feature columns.")
    bad_type = ~frame["cp_type"].isin(CP_TYPES)
    if bad_type.any():
        raise ValueError(
            f"{name}: cp_type must be one of {list(CP_TYPES)}; found "
            f"{sorted(map(str, frame.loc[bad_type, 'cp_type'].unique()))[:5]}."
        )
    values = frame[numeric]
    non_numeric = [c for c in numeric if not pd.api.types.is_numeric_dtype(values[c])]
    if non_numeric:
        raise ValueError(f"{name}: non-numeric values in column(s) {non_numeric[:5]}.")
    finite = np.isfinite(values.to_numpy(dtype=np.float64))
    if not finite.all():
        bad = [c for c, ok in zip(numeric, finite.all(axis=0)) if not ok]
        raise ValueError(
            f"{name}: NaN or infinite values in column(s) {bad[:5]}"
            f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''} "
            f"({int((~finite).sum())} cell(s))."
        )
    return list(frame.columns)


def _check_targets(frame, name):
    values = frame.to_numpy()
    if frame.shape[1] == 0:
        raise ValueError(f"{name}: no target columns besides sig_id.")
    missing = frame.isna().any()
    if missing.any():
        bad = list(missing.index[missing.to_numpy()])
        raise ValueError(
            f"{name}: targets must be 0 or 1; column(s) {bad[:5]} hold NaN "
            f"(empty cells) in {int(frame[bad].isna().any(axis=1).sum())} row(s)."
        )
    if not np.isin(values, (0, 1)).all():
        bad = [c for c in frame.columns if not frame[c].isin((0, 1)).all()]
        values = pd.unique(frame[bad].to_numpy().ravel()).tolist()
        shown = [v for v in values if v not in (0, 1)][:3]
        raise ValueError(
            f"{name}: targets must be 0 or 1; column(s) {bad[:5]} hold other "
            f"values (e.g. {shown})."
        )
    return frame.astype(np.int64)


def _align(frame, index, name, reference=TRAIN_FEATURES):
    extra = frame.index.difference(index)
    missing = index.difference(frame.index)
    if len(extra) or len(missing):
        raise ValueError(
            f"{name}: sig_id values do not match {reference}: "
            f"{len(missing)} missing (e.g. {list(missing[:3])}), "
            f"{len(extra)} unknown (e.g. {list(extra[:3])})."
        )
    return frame.loc[index]


def load_moa(folder):
    """Load the lish-moa competition files from a folder.

    The folder holds the Kaggle files ``train_features.csv``,
    ``train_targets_scored.csv``, ``train_targets_nonscored.csv`` and
    ``train_drug.csv``, and optionally ``test_features.csv`` and
    ``sample_submission.csv``. The rows of the four training files are aligned
    by ``sig_id`` whatever their order in each file.

    Parameters
    ----------
    folder : str or path-like
        The folder that holds the files.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        - ``data``: DataFrame of the features (``cp_type``, ``cp_time``,
          ``cp_dose``, ``g-*``, ``c-*`` in file order), indexed by ``sig_id``.
        - ``target``: DataFrame of the scored targets (0/1 ints).
        - ``target_aux``: DataFrame of the nonscored targets (0/1 ints).
        - ``groups``: Series of the drug id of each row.
        - ``feature_names``, ``target_names``, ``aux_target_names``: lists.
        - ``test_data``: DataFrame of the test features, when present.
        - ``sample_submission``: DataFrame, when present.

    Raises
    ------
    FileNotFoundError
        When the folder or a required file is missing.
    ValueError
        When a file has a missing or unexpected column, duplicate or unmatched
        ``sig_id`` values, or targets other than 0/1; the message names the
        file and the problem.

    Examples
    --------
    >>> import tempfile
    >>> from moa_sklearn.datasets import make_moa, write_moa, load_moa
    >>> world = make_moa(n_samples=300, n_test=60, n_genes=20, n_cells=10,
    ...                  n_scored=8, n_nonscored=6, random_state=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_moa(world, folder)
    ...     moa = load_moa(folder)
    >>> moa.data.shape, moa.target.shape, moa.target_aux.shape
    ((300, 33), (300, 8), (300, 6))
    >>> moa.data.equals(world.data)
    True
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"lish-moa folder {str(folder)!r} does not exist.")
    features = _read_csv(folder, TRAIN_FEATURES)
    feature_names = _check_feature_columns(features, TRAIN_FEATURES)
    scored = _read_targets(folder, TRAIN_SCORED, features.index)
    nonscored = _read_targets(folder, TRAIN_NONSCORED, features.index)
    result = Bunch(
        data=features,
        target=scored,
        target_aux=nonscored,
        groups=_read_drugs(folder, features.index),
        feature_names=feature_names,
        target_names=list(scored.columns),
        aux_target_names=list(nonscored.columns),
    )
    test = _read_test_features(folder, feature_names)
    if test is not None:
        result.test_data = test
    submission = _read_sample_submission(folder, result.target_names, test)
    if submission is not None:
        result.sample_submission = submission
    return result


def _read_targets(folder, name, index):
    """A training targets file, aligned on the training features' rows."""
    return _check_targets(_align(_read_csv(folder, name), index, name), name)


def _read_drugs(folder, index):
    """The drug id of each training row (``train_drug.csv``)."""
    drug = _align(_read_csv(folder, TRAIN_DRUG), index, TRAIN_DRUG)
    if "drug_id" not in drug.columns:
        raise ValueError(f"{TRAIN_DRUG}: column 'drug_id' is missing.")
    if drug.shape[1] != 1:
        extra = [c for c in drug.columns if c != "drug_id"]
        raise ValueError(f"{TRAIN_DRUG}: unexpected column(s) {extra}.")
    missing_drug = drug["drug_id"].isna()
    if missing_drug.any():
        raise ValueError(
            f"{TRAIN_DRUG}: {int(missing_drug.sum())} drug_id value(s) are missing "
            f"(NaN or empty), e.g. for sig_id {list(drug.index[missing_drug][:3])}."
        )
    return drug["drug_id"]


def _read_test_features(folder, feature_names):
    """``test_features.csv`` with the training features' columns, or None."""
    test = _read_csv(folder, TEST_FEATURES, required=False)
    if test is None:
        return None
    test_names = _check_feature_columns(test, TEST_FEATURES)
    if test_names != feature_names:
        raise ValueError(
            f"{TEST_FEATURES}: its columns differ from {TRAIN_FEATURES}'s "
            f"(first difference at "
            f"{_first_difference(test_names, feature_names)!r})."
        )
    return test


def _read_sample_submission(folder, target_names, test):
    """``sample_submission.csv`` (rows of the test features, if any), or None."""
    submission = _read_csv(folder, SAMPLE_SUBMISSION, required=False)
    if submission is None:
        return None
    if list(submission.columns) != target_names:
        raise ValueError(
            f"{SAMPLE_SUBMISSION}: its target columns differ from {TRAIN_SCORED}'s."
        )
    if test is not None:
        _align(submission, test.index, SAMPLE_SUBMISSION, reference=TEST_FEATURES)
    return submission


def _first_difference(a, b):
    for x, y in zip(a, b):
        if x != y:
            return x
    return a[len(b)] if len(a) > len(b) else b[len(a)]


def write_moa(data, folder):
    """Write a lish-moa Bunch to a folder in the Kaggle file layout.

    Writes ``train_features.csv``, ``train_targets_scored.csv``,
    ``train_targets_nonscored.csv``, ``train_drug.csv`` and, when the Bunch has
    ``test_data``, ``test_features.csv`` and ``sample_submission.csv`` (0.5 in
    every cell, as Kaggle's). :func:`load_moa` reads the folder back into the
    same frames.

    Parameters
    ----------
    data : Bunch
        As returned by :func:`make_moa` or :func:`load_moa`.
    folder : str or path-like
        Created if needed; existing files of the layout are overwritten.

    Returns
    -------
    folder : Path

    Examples
    --------
    >>> import tempfile, os
    >>> from moa_sklearn.datasets import make_moa, write_moa
    >>> world = make_moa(n_samples=120, n_test=24, n_genes=8, n_cells=4,
    ...                  n_scored=5, n_nonscored=3, random_state=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sorted(os.listdir(write_moa(world, folder)))
    ['sample_submission.csv', 'test_features.csv', 'train_drug.csv',
     'train_features.csv', 'train_targets_nonscored.csv', 'train_targets_scored.csv']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def write(frame, name):
        # write to a temporary name, then rename: a crash never leaves half a file
        tmp = folder / (name + ".tmp")
        try:
            frame.to_csv(tmp, index_label="sig_id")
            tmp.replace(folder / name)
        finally:  # an error or Ctrl-C leaves no temporary file behind
            tmp.unlink(missing_ok=True)

    write(data.data, TRAIN_FEATURES)
    write(data.target, TRAIN_SCORED)
    write(data.target_aux, TRAIN_NONSCORED)
    write(
        pd.DataFrame({"drug_id": np.asarray(data.groups)}, index=data.data.index),
        TRAIN_DRUG,
    )
    test = data.get("test_data")
    if test is not None:
        write(test, TEST_FEATURES)
        submission = pd.DataFrame(
            0.5, index=test.index, columns=list(data.target.columns)
        )
        write(submission, SAMPLE_SUBMISSION)
    return folder


# --------------------------------------------------------------------------
# The synthetic world
# --------------------------------------------------------------------------

# Sizes of a world without a label table: lish-moa's.
_DEFAULT_SIZES = dict(
    n_samples=23814, n_scored=206, n_nonscored=402, control_fraction=0.078
)

# Sizes of the few large drugs of lish-moa (rows), for a 23,814-row world.
_BIG_DRUG_ROWS = (718, 449, 365, 335, 303, 274, 196, 178)
_TIMES = (24, 48, 72)
_DOSES = ("D1", "D2")
# Effects grow with dose and time (one scale per dose x time).
_DOSE_SCALE = {"D1": 0.8, "D2": 1.0}
_TIME_SCALE = {24: 0.75, 48: 0.95, 72: 1.1}

_N_LATENT = 24  # dimension of the shared MoA signature space
_N_MODES = 2  # ways in which drugs of one MoA act
_DRUG_NOISE = 0.55  # sd of a drug's own effect, relative to a unit signature
_VIABILITY_DRUG_NOISE = 0.4
_MAX_COMPONENTS = 16  # mode combinations kept for a class of many targets
# sizes of the catalogue's drugs of 3-7 scored targets (lish-moa's rows with
# 3, 4, 5 and 7 labels are about 80%, 15%, 3% and 2% of its rows with 3 or more)
_MULTI_SIZES = {3: 0.75, 4: 0.15, 5: 0.05, 6: 0.02, 7: 0.03}
# the signal at which toxic shifts have their drawn size (they scale with it,
# so that signal=0 leaves no information)
_TOXIC_AT_SIGNAL = 1.5
_TIME_SIGN = {24: -1.0, 48: 0.0, 72: 1.0}  # the time-interaction signature's sign


def _check_count(value, name, minimum):
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _hex_ids(rng, n, prefix=""):
    """n distinct random ids such as 'id_0a1b2c3d4' (deterministic given rng)."""
    ids = {}
    while len(ids) < n:
        for v in rng.randint(0, 16**9, size=n - len(ids) + 8, dtype=np.int64):
            ids.setdefault(f"{prefix}{v:09x}", None)
    return list(ids)[:n]


class _World:
    """The latent structure of a synthetic lish-moa world.

    Targets belong to families that share a signature direction in a low-rank
    latent space; a drug's label set is one class of a finite catalogue (as the
    328 distinct label vectors of lish-moa); its features are a Gaussian
    around its class mean, scaled by dose and time, plus its own drug effect and
    row noise, passed through monotone maps that make the marginals non-
    Gaussian. Because the maps are monotone and the rest is Gaussian given the
    mixture component, the posterior over classes, and hence
    P(target | row), is exact.

    Three effects make the optimal decision boundary non-linear (``make_moa``
    turns them on by default; at 0 each leaves the world nearly linear):

    - ``opposed_modes``: the two modes of a MoA point in opposite directions
      (at 1, exactly opposite: the class mean carries no signal, only the
      spread does);
    - ``variance_effect``: drugs of a MoA spread along an axis of the MoA's own
      (a drug-level effect that is not a shift: the class covariance differs
      from class to class, so the optimum is quadratic);
    - ``time_interaction``: a second signature whose sign flips between 24 h
      and 72 h, so that the effect's direction depends on ``cp_time``.
    """

    def __init__(
        self,
        rng,
        n_genes,
        n_cells,
        n_scored,
        n_nonscored,
        signal,
        *,
        opposed_modes=0.0,
        variance_effect=0.0,
        time_interaction=0.0,
        classes=None,
    ):
        self.n_genes, self.n_cells = n_genes, n_cells
        self.n_scored, self.n_nonscored = n_scored, n_nonscored
        strength = self._make_signatures(rng, signal, opposed_modes)
        self._make_loadings(rng)
        self._make_row_noise(rng)
        self._make_conditions(rng)
        if classes is None:
            self._make_catalogue(rng)
        else:
            self.classes, self.prior = classes
            self.scored_weight = None
        self._make_effects(rng, signal, strength, variance_effect, time_interaction)
        self._make_components(rng)

    def _make_signatures(self, rng, signal, opposed_modes):
        """Each target's signature per mode; returns its (long-tailed) strength.

        A target's signature is a family direction + the target's own, in two
        modes (drugs of one MoA act in one of two ways, so the class is a
        mixture and no linear model is optimal).
        """
        n_targets = self.n_scored + self.n_nonscored
        r = _N_LATENT
        n_families = max(1, int(round(n_targets / 10)))
        self.family = rng.randint(n_families, size=n_targets)
        phi = rng.normal(size=(n_families, r))
        psi = rng.normal(size=(n_targets, _N_MODES, r))
        z = 0.7 * phi[self.family][:, None, :] + psi
        z /= np.linalg.norm(z, axis=2, keepdims=True)
        if opposed_modes:
            z[:, 1] = (1 - opposed_modes) * z[:, 1] - opposed_modes * z[:, 0]
            z[:, 1] /= np.linalg.norm(z[:, 1], axis=1, keepdims=True)
        strength = np.exp(rng.normal(0.0, 0.5, size=n_targets))
        strong = rng.rand(n_targets) < 0.06
        strength[strong] *= 2.5
        # a few MoAs kill cells: a shift along the viability factor, of its
        # drawn size at signal 1.5 (_TOXIC_AT_SIGNAL; the default world was
        # calibrated with this reference) and scaled with the signal (so that
        # a signal of 0 leaves no information at all)
        toxic = np.where(rng.rand(n_targets) < 0.1, rng.uniform(1.0, 4.0, n_targets), 0)
        toxic *= signal / _TOXIC_AT_SIGNAL
        self.signature = np.concatenate(
            [
                signal * strength[:, None, None] * z,
                np.repeat(-toxic[:, None, None], _N_MODES, axis=1),
            ],
            axis=2,
        )  # (n_targets, n_modes, r + 1)
        return strength

    def _make_loadings(self, rng):
        """Loadings from the latent space (+ viability) to the features."""
        n_genes, n_cells = self.n_genes, self.n_cells
        w_genes = rng.normal(0.0, 0.32, size=(_N_LATENT, n_genes))
        w_cells = rng.normal(0.0, 0.12, size=(_N_LATENT, n_cells))
        viability = np.concatenate(
            [rng.normal(0.0, 0.25, n_genes), rng.uniform(1.2, 2.0, n_cells)]
        )
        self.loadings = np.vstack([np.hstack([w_genes, w_cells]), viability])
        self.drug_noise = np.r_[np.full(_N_LATENT, _DRUG_NOISE), _VIABILITY_DRUG_NOISE]

    def _make_row_noise(self, rng):
        """Row noise: gene blocks + global gene factors; one strong cell factor."""
        n_genes, n_cells = self.n_genes, self.n_cells
        n_features = n_genes + n_cells
        n_blocks = max(1, n_genes // 30)
        block = rng.randint(n_blocks, size=n_genes)
        factors = [np.zeros((n_features, n_blocks))]
        factors[0][np.arange(n_genes), block] = rng.uniform(0.4, 0.8, n_genes)
        glob = np.zeros((n_features, 3))
        glob[:n_genes] = rng.normal(0.0, 0.15, size=(n_genes, 3))
        cell = np.zeros((n_features, 1))
        cell[n_genes:, 0] = rng.uniform(0.7, 1.0, n_cells)
        self.row_factors = np.hstack(factors + [glob, cell])
        self.row_noise = np.r_[np.ones(n_genes), np.full(n_cells, 0.35**2)]

    def _make_conditions(self, rng):
        """Baseline (plate / time effects) per dose x time, and the effect scale."""
        n_features = self.n_genes + self.n_cells
        self.conditions = [(t, d) for t in _TIMES for d in _DOSES]
        self.baseline = {
            cond: rng.normal(0.0, 0.1, size=n_features) for cond in self.conditions
        }
        self.scale = {
            (t, d): _TIME_SCALE[t] * _DOSE_SCALE[d] for t, d in self.conditions
        }

    def _make_effects(self, rng, signal, strength, variance_effect, time_interaction):
        """The signatures of the non-linear effects (scaled as the targets').

        They draw from a stream of their own, derived from (not drawn from) the
        world's: with or without them, a seed gives the same drugs, labels and
        ids; only the features differ.
        """
        n_targets, r = strength.size, _N_LATENT
        self.time_signature = self.variance_axis = None
        entropy = rng.get_state()[1].tolist()
        self.effect_rng = np.random.RandomState(
            np.random.SeedSequence(entropy).generate_state(1)[0]
        )
        if time_interaction:
            u = self.effect_rng.normal(size=(n_targets, _N_MODES, r))
            u /= np.linalg.norm(u, axis=2, keepdims=True)
            u *= time_interaction * signal * strength[:, None, None]
            self.time_signature = np.concatenate(
                [u, np.zeros((n_targets, _N_MODES, 1))], axis=2
            )
        if variance_effect:
            v = self.effect_rng.normal(size=(n_targets, r))
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            v *= (variance_effect * signal * strength)[:, None]
            # (n_targets, n_features): each target's spread axis in feature space
            self.variance_axis = (
                np.hstack([v, np.zeros((n_targets, 1))]) @ self.loadings
            )

    def _make_catalogue(self, rng):
        """Classes of label sets and their prior probabilities."""
        ns, nn = self.n_scored, self.n_nonscored
        classes, weights = [()], [0.20]  # drugs with no known MoA
        w_scored = np.exp(rng.normal(0.0, 0.9, ns))
        w_scored /= w_scored.sum()
        self.scored_weight = w_scored
        # nonscored-only drugs
        if nn:
            w_non = np.exp(rng.normal(0.0, 1.1, nn))
            w_non /= w_non.sum()
            for u in range(nn):
                classes.append((ns + u,))
                weights.append(0.14 * w_non[u])
        else:
            weights[0] += 0.14
        # scored singles, part of them with a nonscored sibling of the same family
        for t in range(ns):
            siblings = np.flatnonzero(self.family[ns:] == self.family[t])
            if siblings.size:
                u = ns + rng.choice(siblings)
                classes += [(t,), (t, u)]
                weights += [0.57 * 0.75 * w_scored[t], 0.57 * 0.25 * w_scored[t]]
            else:
                classes.append((t,))
                weights.append(0.57 * w_scored[t])
        # pairs of scored targets (8% of drugs), and a few drugs of 3-7 (1.5%)
        for sets, share in (
            (self._scored_sets(rng, w_scored, [2], max(1, 2 * ns // 3)), 0.08),
            (self._scored_sets(rng, w_scored, _MULTI_SIZES, ns // 4), 0.016),
        ):
            set_w = np.exp(rng.normal(0.0, 0.8, len(sets)))
            for members, w in zip(sets, set_w / max(set_w.sum(), 1e-12)):
                classes.append(members)
                weights.append(share * w)
            if not sets:
                weights[0] += share
        weights = np.asarray(weights)
        self.classes = classes
        self.prior = weights / weights.sum()

    def _scored_sets(self, rng, w_scored, sizes, n_sets):
        """Sets of scored targets (drugs of several MoAs), mostly within a family.

        ``n_sets`` distinct sets (fewer if the targets run out), each of a
        size drawn from ``sizes`` (a dict size -> probability, or a list of
        equally likely sizes); sorted, so the catalogue is deterministic.
        """
        ns = self.n_scored
        if isinstance(sizes, dict):
            sizes = {k: v for k, v in sizes.items() if k <= ns}
            size_p = np.array(list(sizes.values()))
            sizes = np.array(list(sizes))
        else:
            sizes = np.array([k for k in sizes if k <= ns])
            size_p = np.ones(len(sizes))
        if not n_sets or not sizes.size:
            return []
        size_p = size_p / size_p.sum()
        found = set()
        for _ in range(20 * n_sets):
            if len(found) >= n_sets:
                break
            size = rng.choice(sizes, p=size_p)
            members = [rng.choice(ns, p=w_scored)]
            while len(members) < size:
                same = np.flatnonzero(self.family[:ns] == self.family[members[0]])
                pool = np.setdiff1d(same, members) if rng.rand() < 0.7 else None
                if pool is None or pool.size == 0:
                    pool = np.setdiff1d(np.arange(ns), members)
                members.append(rng.choice(pool))
            found.add(tuple(sorted(int(t) for t in members)))
        return sorted(found)

    def _make_components(self, rng):
        """Mixture components: a class's combinations of its targets' modes.

        A class of more than ``log2(_MAX_COMPONENTS)`` targets keeps a random
        subset of ``_MAX_COMPONENTS`` combinations (equally likely).
        """
        classes = self.classes
        n_targets = self.n_scored + self.n_nonscored
        membership = np.zeros((len(classes), n_targets))
        for k, members in enumerate(classes):
            membership[k, list(members)] = 1.0
        self.membership = membership
        comp_class, comp_modes, first = [], [], []
        for k, members in enumerate(classes):
            first.append(len(comp_class))
            if _N_MODES ** len(members) <= _MAX_COMPONENTS:
                combos = itertools.product(range(_N_MODES), repeat=len(members))
            else:
                combos = rng.randint(_N_MODES, size=(_MAX_COMPONENTS, len(members)))
            for modes in combos:
                comp_class.append(k)
                comp_modes.append((members, tuple(modes)))
        self.comp_class = np.asarray(comp_class)
        self.comp_first = np.asarray(first)
        self.comp_count = np.bincount(self.comp_class, minlength=len(classes))
        self.comp_prior = self.prior[self.comp_class] / self.comp_count[self.comp_class]

        def means(signature):
            latent = np.zeros((len(comp_modes), signature.shape[2]))
            for i, (members, modes) in enumerate(comp_modes):
                for t, m in zip(members, modes):
                    latent[i] += signature[t, m]
            return latent @ self.loadings  # (n_comp, n_features)

        self.comp_mean = means(self.signature)
        self.comp_time_mean = (
            None if self.time_signature is None else means(self.time_signature)
        )

    def draw_components(self, rng, drug_class):
        """A mixture component (mode combination) for each drug of a class."""
        count = self.comp_count[drug_class]
        return self.comp_first[drug_class] + (rng.rand(drug_class.size) * count).astype(
            np.int64
        )

    def covariance(self, scale):
        """Covariance of one row of an unseen drug of a given effect scale.

        Shared by every class; with ``variance_effect`` a class adds, for each
        of its targets, the rank-one spread along the target's axis (see
        :meth:`posterior_proba`).
        """
        drug = (self.loadings.T * (scale * self.drug_noise) ** 2) @ self.loadings
        row = self.row_factors @ self.row_factors.T + np.diag(self.row_noise)
        return drug + row

    def condition_mean(self, component, time):
        """Mean effect (before the dose x time scale) of components at a time."""
        mean = self.comp_mean[component]
        if self.comp_time_mean is not None:
            mean = mean + _TIME_SIGN[time] * self.comp_time_mean[component]
        return mean

    def sample_latent_rows(self, rng, drug_class, drug_of_row, conditions):
        """Gaussian (pre-transform) features of treated rows."""
        n_drugs = drug_class.size
        component = self.draw_components(rng, drug_class)
        drug_effect = (
            rng.normal(size=(n_drugs, self.loadings.shape[0])) * self.drug_noise
        ) @ self.loadings
        if self.variance_axis is not None:
            # each drug's own position along the axes of its MoAs
            spread = self.effect_rng.normal(size=(n_drugs, self.membership.shape[1]))
            drug_effect += (spread * self.membership[drug_class]) @ self.variance_axis
        scale = np.array([self.scale[c] for c in conditions])
        base = np.array([self.baseline[c] for c in conditions]).reshape(
            len(conditions), self.row_noise.size
        )
        times = np.array([c[0] for c in conditions])
        mean = np.empty((len(conditions), self.row_noise.size))
        for t in _TIMES:
            rows = np.flatnonzero(times == t)
            mean[rows] = self.condition_mean(component[drug_of_row[rows]], t)
        mean += drug_effect[drug_of_row]
        return base + scale[:, None] * mean + self.sample_row_noise(rng, len(scale))

    def sample_control_rows(self, rng, conditions):
        base = np.array([self.baseline[c] for c in conditions]).reshape(
            len(conditions), self.row_noise.size
        )
        return base + self.sample_row_noise(rng, len(conditions))

    def sample_row_noise(self, rng, n):
        factors = rng.normal(size=(n, self.row_factors.shape[1])) @ self.row_factors.T
        return factors + rng.normal(size=(n, self.row_noise.size)) * np.sqrt(
            self.row_noise
        )

    def posterior_proba(self, latent, conditions):
        """Exact P(target = 1 | row) for treated rows of unseen drugs.

        Per dose x time, the shared covariance whitens the rows and the
        component means; a class's own spread (``variance_effect``) adds a
        low-rank term to its covariance, handled exactly with the Woodbury
        identity and the matrix determinant lemma.
        """
        out = np.zeros((latent.shape[0], self.membership.shape[1]))
        conditions = np.asarray([f"{t}{d}" for t, d in conditions])
        log_prior = np.log(self.comp_prior)
        comp_membership = self.membership[self.comp_class]
        for t, d in self.conditions:
            rows = np.flatnonzero(conditions == f"{t}{d}")
            if not rows.size:
                continue
            scale = self.scale[(t, d)]
            chol = cho_factor(self.covariance(scale), lower=True)
            centred = latent[rows] - self.baseline[(t, d)]
            # Mahalanobis distances to each class mean, through whitening
            white_x = solve_triangular(chol[0], centred.T, lower=True).T
            comp_mean = self.condition_mean(np.arange(self.comp_class.size), t)
            white_m = solve_triangular(chol[0], scale * comp_mean.T, lower=True).T
            logits = (
                white_x @ white_m.T
                - 0.5 * np.einsum("ij,ij->i", white_m, white_m)[None, :]
                + log_prior[None, :]
            )
            if self.variance_axis is not None:
                axes = solve_triangular(
                    chol[0], scale * self.variance_axis.T, lower=True
                ).T  # (n_targets, n_features), whitened
                logits += self._spread_terms(white_x, white_m, axes)
            log_post = logits - logsumexp(logits, axis=1, keepdims=True)
            out[rows] = np.exp(log_post) @ comp_membership
        return np.clip(out, 0.0, 1.0)

    def _spread_terms(self, white_x, white_m, axes):
        """Log-likelihood terms of each class's own spread (whitened space).

        A component with spread axes V (whitened, one column per target of its
        class) has covariance I + V V^T: its log density exceeds the shared
        one's by 0.5 u^T (I + V^T V)^-1 u - 0.5 log det(I + V^T V), with
        u = V^T (x - m).
        """
        projected_x = white_x @ axes.T  # (n_rows, n_targets)
        terms = np.zeros((white_x.shape[0], self.comp_class.size))
        for k, members in enumerate(self.classes):
            if not members:
                continue
            v = axes[list(members)]  # (n_members, n_features)
            gram = np.eye(len(members)) + v @ v.T
            inverse = np.linalg.inv(gram)
            _, logdet = np.linalg.slogdet(gram)
            comps = np.flatnonzero(self.comp_class == k)
            # u: (n_rows, n_comps, n_members)
            u = projected_x[:, None, list(members)] - (white_m[comps] @ v.T)[None]
            quad = np.einsum("icj,jk,ick->ic", u, inverse, u)
            terms[:, comps] = 0.5 * quad - 0.5 * logdet
        return terms

    def observe(self, latent):
        """Monotone maps: heavy-tailed genes; cells with a left tail, floor at -10."""
        g = self.n_genes
        out = np.empty_like(latent)
        out[:, :g] = np.sinh(1.25 * np.arcsinh(latent[:, :g]))
        cells = latent[:, g:]
        tail = np.logaddexp(0.0, -cells - 1.0)
        cells = cells - 0.6 * tail**2
        out[:, g:] = -10.0 + np.logaddexp(0.0, cells + 10.0)
        return np.round(out, 4)


def _drug_sizes(rng, n_rows):
    """Replicate counts of ordinary drugs: mostly 6 (3 times x 2 doses)."""
    sizes = []
    total = 0
    while total < n_rows:
        size = rng.choice((6, 12, 18), p=(0.94, 0.045, 0.015))
        size = min(size, n_rows - total)
        sizes.append(size)
        total += size
    return np.asarray(sizes, dtype=np.int64)


def _conditions_of(rng, sizes):
    """Dose x time of each row: every replicate set cycles through the six."""
    conditions = [(t, d) for t in _TIMES for d in _DOSES]
    rows = []
    for size in sizes:
        order = rng.permutation(6)
        rows.extend(conditions[order[i % 6]] for i in range(size))
    return rows


def _check_effect(value, name, upper=None):
    bad = not isinstance(value, numbers.Real) or isinstance(value, bool)
    if bad or not np.isfinite(value) or value < 0 or (upper and value > upper):
        bounds = f"in [0, {upper}]" if upper else ">= 0"
        raise ValueError(f"{name} must be a finite float {bounds}, got {value!r}.")
    return float(value)


def _label_table(table):
    """Rows, drugs and label classes of a lish-moa label table (``labels_from``).

    Returns the treated rows' drug index, the classes (tuples of target
    indices, one per distinct label vector of the treated drugs) with their
    prior (share of drugs), and each drug's class.
    """
    values, conditions, control = _check_label_table(table)
    treated_groups = pd.Series(table.groups).to_numpy()[~control]
    drug_ids, drug_of_row = np.unique(treated_groups, return_inverse=True)
    # one label vector per drug: its rows' majority (labels are constant within
    # a drug in lish-moa, so this is simply the drug's labels)
    sums = np.zeros((drug_ids.size, values.shape[1]))
    np.add.at(sums, drug_of_row, values[~control])
    drug_labels = (2 * sums >= np.bincount(drug_of_row)[:, None]).astype(np.int8)
    vectors, drug_class, counts = np.unique(
        drug_labels, axis=0, return_inverse=True, return_counts=True
    )
    classes = [tuple(np.flatnonzero(v)) for v in vectors]
    return dict(
        control=control,
        conditions=conditions,
        drug_of_row=drug_of_row,
        drug_class=drug_class.ravel(),
        drug_labels=drug_labels,
        classes=classes,
        prior=counts / counts.sum(),
    )


def _check_label_table(table):
    """Check a label table; return its 0/1 labels, conditions and control rows."""
    needed = ("data", "target", "target_aux", "groups")
    if not all(hasattr(table, k) for k in needed):
        raise TypeError(
            "labels_from must be the Bunch that load_moa returns (with data, "
            f"target, target_aux and groups), got {type(table).__name__}."
        )
    data, groups = table.data, pd.Series(table.groups)
    labels = pd.concat([table.target, table.target_aux], axis=1)
    n = len(data)
    if len(labels) != n or len(groups) != n:
        raise ValueError("labels_from: data, targets and groups have different rows.")
    missing = [c for c in CATEGORICAL_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"labels_from: data lacks the column(s) {missing}.")
    if n == 0:
        raise ValueError("labels_from: the label table has no rows.")
    values = labels.to_numpy()
    if not np.isin(values, (0, 1)).all():
        raise ValueError("labels_from: the targets must be 0/1.")
    conditions = list(zip(data["cp_time"].to_numpy(), data["cp_dose"].to_numpy()))
    odd = sorted({c for c in conditions if c[0] not in _TIMES or c[1] not in _DOSES})
    if odd:
        raise ValueError(
            f"labels_from: cp_time must be in {_TIMES} and cp_dose in {_DOSES}; "
            f"found {odd[:3]}."
        )
    control = (data["cp_type"] == CONTROL).to_numpy()
    if values[control].any():
        raise ValueError("labels_from: control rows (ctl_vehicle) must have no label.")
    return values, conditions, control


def _sample_part(world, rng, drug_class, drug_of_row, conditions, ctl_conditions):
    """Latent features, Bayes probabilities and labels of treated + control rows."""
    n_targets = world.membership.shape[1]
    trt = world.sample_latent_rows(rng, drug_class, drug_of_row, conditions)
    ctl = world.sample_control_rows(rng, ctl_conditions)
    proba = np.zeros((trt.shape[0] + ctl.shape[0], n_targets))
    if trt.shape[0]:
        proba[: trt.shape[0]] = world.posterior_proba(trt, conditions)
    labels = np.vstack(
        [world.membership[drug_class[drug_of_row]], np.zeros((len(ctl), n_targets))]
    ).astype(np.int64)
    return np.vstack([trt, ctl]), proba[:, : world.n_scored], labels


def make_moa(
    n_samples=None,
    *,
    n_test=3982,
    n_genes=772,
    n_cells=100,
    n_scored=None,
    n_nonscored=None,
    signal=1.3,
    opposed_modes=0.3,
    variance_effect=0.4,
    time_interaction=0.3,
    control_fraction=None,
    labels_from=None,
    random_state=None,
):
    """Generate a synthetic lish-moa world whose optimal predictions are known.

    The world has the layout and the main statistical traits of the
    competition's data, so that methods can be compared against the exact
    Bayes-optimal loss:

    - drugs with replicate rows over ``cp_time`` 24/48/72 x ``cp_dose`` D1/D2
      (mostly 6 rows, some 12 or 18, and a few large drugs with hundreds of
      rows); a ``ctl_vehicle`` pseudo-drug with ``control_fraction`` of the rows,
      whose targets are all 0; labels constant within a drug;
    - scored and nonscored targets with long-tailed prevalence; most rows have
      0 or 1 positive, a few 2, very few 3 to 7; each drug's label set is one
      class of a finite catalogue (about 330 distinct scored label vectors at
      full size, as lish-moa's 328); targets come in families that share a
      signature, so nonscored targets inform about scored ones;
    - genes correlated in blocks, with heavy-tailed marginals; cells strongly
      inter-correlated with a heavy left tail and a floor at -10; a few MoAs
      kill cells; effects scaled by dose and time; each drug has an effect of
      its own besides its class's, so drugs of one MoA differ.

    Features are Gaussian given the class's mixture component before monotone
    per-column maps, so ``bayes_proba``, the posterior P(scored target = 1 |
    row) for a row of an unseen drug, is exact: no model can beat it on new
    drugs but by chance. ``opposed_modes``, ``variance_effect`` and
    ``time_interaction`` make that optimum non-linear (it stays exact); they
    are on by default, as the real data is not linearly separable either.

    With ``labels_from``, the rows, drugs, doses, times and labels are those of
    a real label table (the Bunch of :func:`load_moa`): only the features are
    replaced by synthetic ones, drawn for each drug from its label vector's
    class, the classes being the table's distinct label vectors with their
    share of the drugs as prior. The test rows are new 6-row drugs whose label
    vectors are drawn from that prior.

    Parameters
    ----------
    n_samples : int or None, default=None
        Number of training rows: 23,814 (lish-moa's size) by default; with
        ``labels_from``, the table's (another value is an error).
    n_test : int, default=3982
        Number of test rows, from drugs not in the training rows; 0 for none.
    n_genes, n_cells : int, default=772, 100
        Number of ``g-`` and ``c-`` columns.
    n_scored, n_nonscored : int or None, default=None
        Number of scored and nonscored (auxiliary) targets: 206 and 402 by
        default; with ``labels_from``, the table's.
    signal : float, default=1.3
        Strength of the MoA signatures; 0 makes features independent of the
        labels (the constant prior is then optimal). The defaults of
        ``signal`` and the three non-linear effects below are calibrated on
        drugs held out whole so that, as on the real data, logistic regression
        on RankGauss + PCA is clearly behind the public recipe's net, which
        reaches about 0.75 of the prior (see ``benchmarks/baselines.py``).
        The three effects at 0 give the nearly linear world of earlier
        versions.
    opposed_modes : float in [0, 1], default=0.3
        How far the two modes of a MoA (the two ways its drugs act) point in
        opposite directions; at 1 the class's mean effect is zero and only the
        spread of its drugs tells it apart (no linear model can use it).
    variance_effect : float, default=0.4
        Spread of the drugs of a MoA along an axis of the MoA's own, relative
        to its signature: a drug-level effect that is not a shift, so that
        classes differ in covariance and the optimal boundary is quadratic.
    time_interaction : float, default=0.3
        Strength, relative to the signature, of a second signature whose sign
        flips from 24 h to 72 h (0 at 48 h): the effect's direction depends
        on ``cp_time``.
    control_fraction : float or None, default=None
        Fraction of ``ctl_vehicle`` rows: 0.078 by default; with
        ``labels_from``, the table's (applied to the test rows).
    labels_from : Bunch or None, default=None
        A lish-moa label table, as :func:`load_moa` returns it (``data`` with
        ``cp_type``, ``cp_time``, ``cp_dose``; ``target``, ``target_aux``,
        ``groups``): keep its rows, drugs and labels, replace the features.
    random_state : int, RandomState instance or None, default=None
        Seed; the same int gives the same world.

    Returns
    -------
    world : :class:`~sklearn.utils.Bunch`
        The fields of :func:`load_moa` (``data``, ``target``, ``target_aux``,
        ``groups``, ``test_data``, names), plus the truth: ``bayes_proba``
        (DataFrame like ``target``), ``test_target``, ``test_target_aux``,
        ``test_groups`` and ``test_bayes_proba``.

    Examples
    --------
    >>> from moa_sklearn.datasets import make_moa
    >>> from moa_sklearn.metrics import mean_columnwise_log_loss
    >>> world = make_moa(n_samples=2000, n_test=500, n_genes=50, n_cells=20,
    ...                  n_scored=20, n_nonscored=30, random_state=0)
    >>> world.data.shape, world.target.shape, world.target_aux.shape
    ((2000, 73), (2000, 20), (2000, 30))
    >>> prior = world.target.mean().to_numpy()
    >>> bayes = mean_columnwise_log_loss(world.test_target, world.test_bayes_proba)
    >>> const = mean_columnwise_log_loss(
    ...     world.test_target, prior.clip(1e-3, None) + 0 * world.test_bayes_proba)
    >>> bayes < const
    True

    The same drugs and labels with other features (``labels_from``):

    >>> again = make_moa(labels_from=world, n_test=0, n_genes=30, n_cells=10,
    ...                  variance_effect=1.0, random_state=1)
    >>> again.target.equals(world.target), again.data.shape
    (True, (2000, 43))
    """
    table = None if labels_from is None else _label_table(labels_from)
    given = dict(
        n_samples=n_samples,
        n_scored=n_scored,
        n_nonscored=n_nonscored,
        control_fraction=control_fraction,
    )
    sizes = _DEFAULT_SIZES if table is None else _table_sizes(labels_from, table, given)
    given = {k: sizes[k] if v is None else v for k, v in given.items()}
    n_samples = _check_count(
        given["n_samples"], "n_samples", 12 if table is None else 1
    )
    n_test = _check_count(n_test, "n_test", 0)
    n_genes = _check_count(n_genes, "n_genes", 1)
    n_cells = _check_count(n_cells, "n_cells", 1)
    n_scored = _check_count(given["n_scored"], "n_scored", 1)
    n_nonscored = _check_count(given["n_nonscored"], "n_nonscored", 0)
    signal = _check_effect(signal, "signal")
    effects = dict(
        opposed_modes=_check_effect(opposed_modes, "opposed_modes", upper=1),
        variance_effect=_check_effect(variance_effect, "variance_effect"),
        time_interaction=_check_effect(time_interaction, "time_interaction"),
    )
    control_fraction = _check_control_fraction(given["control_fraction"])

    rng = check_random_state(random_state)
    classes = None if table is None else (table["classes"], table["prior"])
    world = _World(
        rng, n_genes, n_cells, n_scored, n_nonscored, signal, classes=classes, **effects
    )
    if table is None:
        return _synthetic_world(world, rng, n_samples, n_test, control_fraction)
    return _world_from_labels(world, rng, labels_from, table, n_test, control_fraction)


def _table_sizes(labels_from, table, given):
    """The sizes of a label table; a size ``given`` otherwise is an error."""
    sizes = dict(
        n_samples=len(labels_from.data),
        n_scored=labels_from.target.shape[1],
        n_nonscored=labels_from.target_aux.shape[1],
        control_fraction=float(table["control"].mean()),
    )
    clash = {k: v for k, v in given.items() if v is not None and v != sizes[k]}
    if clash:
        raise ValueError(
            f"with labels_from, {sorted(clash)} come from the label table "
            f"({', '.join(f'{k}={sizes[k]!r}' for k in sorted(clash))}): "
            "leave them out."
        )
    return sizes


def _check_control_fraction(value):
    if not isinstance(value, numbers.Real) or not (0 <= value < 0.5):
        raise ValueError(f"control_fraction must be in [0, 0.5), got {value!r}.")
    return value


def _synthetic_world(world, rng, n_samples, n_test, control_fraction):
    """The rows of a world of the synthetic catalogue (training and test)."""
    n_ctl = int(round(control_fraction * n_samples))
    sizes, drug_class = _training_drugs(world, rng, n_samples - n_ctl, n_samples)
    test_sizes, test_class, n_test_ctl = _test_drugs(
        world, rng, n_test, control_fraction
    )
    ids = _hex_ids(rng, sizes.size + test_sizes.size + 1)
    parts = []
    for part_sizes, classes, n_part_ctl, drug_ids in (
        (sizes, drug_class, n_ctl, ids[: sizes.size]),
        (test_sizes, test_class, n_test_ctl, ids[sizes.size : -1]),
    ):
        parts.append(
            _part_rows(world, rng, part_sizes, classes, n_part_ctl, drug_ids, ids[-1])
        )
    sig_ids = _hex_ids(rng, n_samples + n_test, prefix="id_")
    return _world_bunch(world, rng, parts, [sig_ids[:n_samples], sig_ids[n_samples:]])


def _training_drugs(world, rng, n_trt, n_samples):
    """Sizes and classes of the drugs of ``n_trt`` treated training rows.

    A few large drugs (scaled to ``n_samples`` rows) belong to the most common
    scored MoAs, and every scored target has at least one drug, as in lish-moa.
    """
    single_class = {c[0]: k for k, c in enumerate(world.classes) if len(c) == 1}
    big = [int(round(b * n_samples / 23814)) for b in _BIG_DRUG_ROWS]
    big = [b for b in big if b > 18]
    if sum(big) > n_trt // 2:
        big = []
    sizes = np.concatenate([big, _drug_sizes(rng, n_trt - sum(big))]).astype(np.int64)
    n_big = len(big)
    drug_class = rng.choice(len(world.classes), size=sizes.size, p=world.prior)
    top = np.argsort(-world.scored_weight)[:n_big]
    drug_class[:n_big] = [single_class[t] for t in top]
    counts = world.membership[drug_class, : world.n_scored].sum(axis=0)
    empty = [k for k in range(n_big, sizes.size) if not world.classes[drug_class[k]]]
    for t in np.flatnonzero(counts == 0):
        if not empty:
            break
        drug_class[empty.pop()] = single_class[t]
    return sizes, drug_class


def _test_drugs(world, rng, n_test, control_fraction):
    """Test drugs: ordinary drugs, classes drawn from the prior; and n controls."""
    n_test_ctl = int(round(control_fraction * n_test))
    test_sizes = _drug_sizes(rng, n_test - n_test_ctl) if n_test else np.zeros(0, int)
    test_class = rng.choice(len(world.classes), size=test_sizes.size, p=world.prior)
    return test_sizes, test_class, n_test_ctl


def _part_rows(world, rng, sizes, classes, n_ctl, drug_ids, control_id):
    """Treated rows of drugs of given sizes and classes, then ``n_ctl`` controls."""
    drug_of_row = np.repeat(np.arange(sizes.size), sizes)
    conditions = _conditions_of(rng, sizes)
    ctl_conditions = _conditions_of(rng, [n_ctl])[:n_ctl]
    latent, proba, labels = _sample_part(
        world, rng, classes, drug_of_row, conditions, ctl_conditions
    )
    cond = conditions + ctl_conditions
    n_trt = len(conditions)
    return dict(
        latent=latent,
        proba=proba,
        labels=labels,
        cp_type=np.r_[np.full(n_trt, "trt_cp"), np.full(n_ctl, CONTROL)],
        cp_time=np.array([c[0] for c in cond], dtype=np.int64),
        cp_dose=np.array([c[1] for c in cond]),
        drug=np.r_[
            np.asarray(drug_ids, dtype=object)[drug_of_row],
            np.full(n_ctl, control_id, dtype=object),
        ],
    )


def _world_from_labels(world, rng, labels_from, table, n_test, control_fraction):
    """A world that keeps a label table's rows, drugs and labels (``labels_from``)."""
    train = _table_rows(world, rng, labels_from, table)
    test_sizes, test_class, n_test_ctl = _test_drugs(
        world, rng, n_test, control_fraction
    )
    data = labels_from.data
    taken = set(map(str, train["drug"])) | set(map(str, data.index))
    ids = [i for i in _hex_ids(rng, test_sizes.size + 1 + len(taken)) if i not in taken]
    test = _part_rows(
        world, rng, test_sizes, test_class, n_test_ctl, ids[: test_sizes.size], ids[-1]
    )
    sig_ids = [
        i for i in _hex_ids(rng, n_test + len(taken), prefix="id_") if i not in taken
    ][:n_test]
    return _world_bunch(
        world,
        rng,
        [train, test],
        [list(data.index), sig_ids],
        names=(list(labels_from.target.columns), list(labels_from.target_aux.columns)),
        shuffle_train=False,
    )


def _table_rows(world, rng, labels_from, table):
    """The training part of a label table: its rows, new features."""
    control = table["control"]
    conditions = table["conditions"]
    trt_conditions = [c for c, ctl in zip(conditions, control) if not ctl]
    ctl_conditions = [c for c, ctl in zip(conditions, control) if ctl]
    latent, proba, labels = _sample_part(
        world,
        rng,
        table["drug_class"],
        table["drug_of_row"],
        trt_conditions,
        ctl_conditions,
    )
    # back to the table's row order (treated rows first in the sample)
    order = np.r_[np.flatnonzero(~control), np.flatnonzero(control)]
    rows = np.empty_like(order)
    rows[order] = np.arange(order.size)
    data = labels_from.data
    return dict(
        latent=latent[rows],
        proba=proba[rows],
        labels=labels[rows],
        cp_type=data["cp_type"].to_numpy(),
        cp_time=data["cp_time"].to_numpy().astype(np.int64),
        cp_dose=data["cp_dose"].to_numpy(),
        drug=pd.Series(labels_from.groups).to_numpy().astype(object),
    )


def _world_bunch(world, rng, parts, sig_ids, names=None, shuffle_train=True):
    """The Bunch of :func:`make_moa` from the training and test parts."""
    if names is None:
        names = (
            [f"moa_{i:03d}" for i in range(world.n_scored)],
            [f"aux_{i:03d}" for i in range(world.n_nonscored)],
        )
    target_names, aux_names = names
    data, target, aux, bayes, groups = _part_frames(
        world, rng, parts[0], sig_ids[0], names, shuffle_train
    )
    world_bunch = Bunch(
        data=data,
        target=target,
        target_aux=aux,
        groups=groups,
        feature_names=list(data.columns),
        target_names=target_names,
        aux_target_names=aux_names,
        bayes_proba=bayes,
        DESCR="Synthetic lish-moa world generated by moa_sklearn.datasets.make_moa.",
    )
    if parts[1]["latent"].shape[0]:
        t_data, t_target, t_aux, t_bayes, t_groups = _part_frames(
            world, rng, parts[1], sig_ids[1], names
        )
        world_bunch.update(
            test_data=t_data,
            test_target=t_target,
            test_target_aux=t_aux,
            test_bayes_proba=t_bayes,
            test_groups=t_groups,
        )
    return world_bunch


def _part_frames(world, rng, part, sig, names, shuffle=True):
    """Features, targets, nonscored targets, Bayes proba and drugs of a part."""
    target_names, aux_names = names
    n_scored = world.n_scored
    n = part["latent"].shape[0]
    order = rng.permutation(n) if shuffle else np.arange(n)
    index = pd.Index(np.asarray(sig, dtype=object)[: order.size], name="sig_id")
    columns = [f"g-{i}" for i in range(world.n_genes)]
    columns += [f"c-{i}" for i in range(world.n_cells)]
    data = pd.DataFrame(
        world.observe(part["latent"][order]), index=index, columns=columns
    )
    data.insert(0, "cp_dose", part["cp_dose"][order])
    data.insert(0, "cp_time", part["cp_time"][order])
    data.insert(0, "cp_type", part["cp_type"][order])
    labels = part["labels"][order]
    target = pd.DataFrame(labels[:, :n_scored], index=index, columns=target_names)
    aux = pd.DataFrame(labels[:, n_scored:], index=index, columns=aux_names)
    bayes = pd.DataFrame(part["proba"][order], index=index, columns=target_names)
    groups = pd.Series(part["drug"][order], index=index, name="drug_id")
    return data, target, aux, bayes, groups
