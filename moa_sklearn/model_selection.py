"""Drug-grouped multilabel stratified cross-validation for lish-moa."""

import numbers

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from sklearn.utils.validation import _num_samples

__all__ = ["DrugMultilabelStratifiedKFold"]


def _drug_ids(groups, n_samples):
    """``groups`` as a 1-D array of one drug id per row (required)."""
    if groups is None:
        raise ValueError(
            "DrugMultilabelStratifiedKFold needs groups: the drug id of each row "
            "(e.g. cross_val_score(..., groups=drugs), or params={'groups': "
            "drugs} with metadata routing)."
        )
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups must be 1-D with one drug id per row: got shape "
            f"{groups.shape} for {n_samples} rows."
        )
    return groups


def _label_matrix(y, n_samples):
    """y as a 2-D 0/1 matrix for stratification (1-D classes are one-hot)."""
    if y is None:
        raise ValueError(
            "DrugMultilabelStratifiedKFold stratifies on the labels: pass y to split."
        )
    if isinstance(y, (pd.DataFrame, pd.Series)):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.shape[0] != n_samples:
        raise ValueError(
            f"y has {y.shape[0]} rows but X has {n_samples}; they must be aligned."
        )
    if y.ndim == 1:
        _, codes = np.unique(y, return_inverse=True)
        return np.eye(codes.max() + 1, dtype=np.int8)[codes]
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}.")
    return y


class DrugMultilabelStratifiedKFold(BaseCrossValidator):
    """Drug-grouped multilabel stratified K-fold (Chris Deotte's lish-moa scheme).

    The rows of one drug are replicates (doses x times) with the same labels,
    so a plain row-wise split leaks: the model sees the test drug in training.
    This splitter keeps every drug with at most ``max_drug_size`` rows whole in
    one fold, and stratifies those drugs over folds with iterative
    stratification on one label vector per drug. The few large drugs (control
    vehicle and the drugs with hundreds of rows) are split by row, also with
    multilabel stratification, so that each fold sees some of them.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    max_drug_size : int or None, default=18
        Drugs with at most this many rows are kept whole; larger drugs are
        split by row (the Kaggle protocol: comparable with the competition's
        CV figures, optimistic for new compounds since the large drugs are
        partly memorised). None keeps every drug whole, the control vehicle
        included (the new-compound protocol: each test fold holds drugs that
        training never saw).
    shuffle : bool, default=True
        Shuffle the drugs (and the rows of the large drugs) before
        stratifying. With ``shuffle=False`` they are taken in order, but
        iterative stratification still breaks ties at random, with NumPy's
        global random state: the folds are then reproducible only under
        ``numpy.random.seed``.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling and of the stratification's tie-breaks (with
        ``shuffle=True``); an int gives the same folds on every call. As in
        scikit-learn's ``KFold``, setting it with ``shuffle=False`` is an
        error, raised by the constructor (it would have no effect).

    Notes
    -----
    As scikit-learn's splitters, the constructor validates its parameters
    (``n_splits``, ``max_drug_size`` and ``shuffle`` against their declared
    ``_parameter_constraints``, as scikit-learn's estimators; ``shuffle``
    with ``random_state``) and raises a ``ValueError`` at once;
    :meth:`split` checks them again, for parameters changed after
    construction.

    ``groups`` (the drug id of each row) is required by :meth:`split`. With
    metadata routing enabled the splitter requests ``groups``, so
    ``cross_validate(..., params={"groups": drugs})`` reaches it.

    A drug's label vector is the majority vote of its rows' labels (labels are
    constant within a drug in lish-moa, so this is simply the drug's labels).

    Examples
    --------
    >>> import numpy as np
    >>> from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
    >>> rng = np.random.RandomState(0)
    >>> drugs = np.repeat(np.arange(20), 6)
    >>> Y = np.repeat(rng.randint(0, 2, size=(20, 3)), 6, axis=0)
    >>> X = rng.normal(size=(120, 4))
    >>> cv = DrugMultilabelStratifiedKFold(n_splits=4, random_state=0)
    >>> for train, test in cv.split(X, Y, groups=drugs):
    ...     assert not set(drugs[train]) & set(drugs[test])
    >>> cv.get_n_splits()
    4
    """

    __metadata_request__split = {"groups": True}

    _parameter_constraints = {
        "n_splits": [Interval(numbers.Integral, 2, None, closed="left")],
        "max_drug_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self, n_splits=5, *, max_drug_size=18, shuffle=True, random_state=None
    ):
        self.n_splits = n_splits
        self.max_drug_size = max_drug_size
        self.shuffle = shuffle
        self.random_state = random_state
        # scikit-learn's splitters validate in __init__ (an exception to the
        # "__init__ only stores" rule of estimators); split checks again
        self._check_params()

    def _check_params(self):
        """The declared constraints, then the rule tying ``random_state`` to
        ``shuffle`` (an ``InvalidParameterError`` or a ``ValueError``)."""
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        if not self.shuffle and self.random_state is not None:
            # scikit-learn's KFold message
            raise ValueError(
                "Setting a random_state has no effect since shuffle is False. "
                "You should leave random_state to its default (None), or set "
                "shuffle=True."
            )

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of folds."""
        return self.n_splits

    def _seed(self):
        # iterative-stratification needs an int seed when shuffling; draw one
        # from a RandomState so that instances and ints both work.
        rs = self.random_state
        if rs is None or isinstance(rs, numbers.Integral):
            return rs
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def split(self, X, y=None, groups=None):
        """Generate (train, test) row indices.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            Labels to stratify on (a 0/1 matrix, or 1-D classes).
        groups : array-like of shape (n_samples,)
            Drug id of each row.

        Yields
        ------
        train, test : ndarray of int
        """
        self._check_params()
        n_samples = _num_samples(X)
        groups = _drug_ids(groups, n_samples)
        Y = _label_matrix(y, n_samples)
        if not np.all(np.isin(Y, (0, 1))):
            raise ValueError("y must be a 0/1 label matrix to stratify on.")
        Y = Y.astype(np.int8, copy=False)

        _, row_drug = np.unique(groups, return_inverse=True)
        sizes = np.bincount(row_drug)
        if self.max_drug_size is None:  # new-compound protocol: all drugs whole
            small = np.ones(sizes.size, dtype=bool)
        else:
            small = sizes <= self.max_drug_size
        fold_of_row = np.full(n_samples, -1, dtype=np.int64)
        seed = self._seed()
        self._small_drug_folds(fold_of_row, Y, row_drug, sizes, small, seed)
        self._large_drug_folds(fold_of_row, Y, np.flatnonzero(~small[row_drug]), seed)

        indices = np.arange(n_samples)
        for k in range(self.n_splits):
            test = indices[fold_of_row == k]
            train = indices[fold_of_row != k]
            yield train, test

    def _small_drug_folds(self, fold_of_row, Y, row_drug, sizes, small, seed):
        """Whole small drugs to folds, stratified on one label vector per drug.

        A drug's label vector is the majority vote of its rows' labels. Sets
        ``fold_of_row`` of the small drugs' rows.
        """
        small_drugs = np.flatnonzero(small)
        if not small_drugs.size:
            return
        if small_drugs.size < self.n_splits:
            kept = (
                "drugs are given"
                if self.max_drug_size is None
                else f"drugs have at most max_drug_size={self.max_drug_size} rows"
            )
            raise ValueError(
                f"Only {small_drugs.size} {kept}; at least n_splits="
                f"{self.n_splits} are needed to put one in each fold."
            )
        sums = np.zeros((sizes.size, Y.shape[1]))
        np.add.at(sums, row_drug, Y)
        drug_y = (sums[small_drugs] * 2 >= sizes[small_drugs, None]).astype(np.int8)
        mskf = MultilabelStratifiedKFold(
            n_splits=self.n_splits, shuffle=self.shuffle, random_state=seed
        )
        fold_of_drug = np.full(sizes.size, -1, dtype=np.int64)
        dummy = np.zeros((small_drugs.size, 1))
        for k, (_, test) in enumerate(mskf.split(dummy, drug_y)):
            fold_of_drug[small_drugs[test]] = k
        in_small = small[row_drug]
        fold_of_row[in_small] = fold_of_drug[row_drug[in_small]]

    def _large_drug_folds(self, fold_of_row, Y, large_rows, seed):
        """The rows of the large drugs to folds, by row (multilabel stratified).

        Sets ``fold_of_row`` of ``large_rows``.
        """
        if not large_rows.size:
            return
        if large_rows.size < self.n_splits:
            raise ValueError(
                f"Cannot split {large_rows.size} rows of large drugs into "
                f"{self.n_splits} folds."
            )
        mskf = MultilabelStratifiedKFold(
            n_splits=self.n_splits,
            shuffle=self.shuffle,
            random_state=None if seed is None else seed + 1,
        )
        dummy = np.zeros((large_rows.size, 1))
        for k, (_, test) in enumerate(mskf.split(dummy, Y[large_rows])):
            fold_of_row[large_rows[test]] = k


#: The two evaluation protocols: what each holds out, as the splitter's
#: ``max_drug_size`` (None: every drug whole) and a description.
_PROTOCOLS = {
    "new-compound": (None, "every drug held out whole"),
    "kaggle": (
        18,
        "drugs of at most 18 rows held out whole, the control vehicle and the "
        "large drugs split by row",
    ),
}


def _protocol_splitter(protocol, n_splits=5, random_state=None):
    """The :class:`DrugMultilabelStratifiedKFold` of a named protocol."""
    if protocol not in _PROTOCOLS:
        raise ValueError(
            f"protocol must be one of {sorted(_PROTOCOLS)}, got {protocol!r}."
        )
    return DrugMultilabelStratifiedKFold(
        n_splits, max_drug_size=_PROTOCOLS[protocol][0], random_state=random_state
    )
