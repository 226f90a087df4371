"""Warnings of the package (a leaf module: it imports no other family).

:class:`DrugLeakageWarning` is raised as a warning when an inner split of a
net (early stopping, best epoch) or of :class:`~moa_sklearn.ensemble.
StackingBlend` (the out-of-fold predictions) has to split rows because no
drug ids (``groups``) reached ``fit``. Turn it into an error to make sure
that a script never scores with a leaky inner split::

    import warnings
    from moa_sklearn.exceptions import DrugLeakageWarning

    warnings.simplefilter("error", DrugLeakageWarning)
"""

import warnings

__all__ = ["DrugLeakageWarning"]


class DrugLeakageWarning(UserWarning):
    """An inner split got no drug ids and split rows of one drug apart.

    The rows of one drug are replicates (doses x times) with the same
    labels. An inner validation split or inner CV that splits rows puts
    replicates of a drug on both sides, so the chosen epoch or blend weights
    are tuned on drugs the model has seen, and the scores are optimistic
    for new compounds. Pass the drug ids as ``groups`` (see the message
    and the pitfalls page of the user guide), or, for data whose rows are
    truly independent, ``groups=numpy.arange(n_samples)``.

    A ``UserWarning`` subclass: filter it with
    ``warnings.filterwarnings("ignore", category=DrugLeakageWarning)`` or turn
    it into an error with ``warnings.simplefilter("error",
    DrugLeakageWarning)``.

    Examples
    --------
    >>> import warnings
    >>> from moa_sklearn.exceptions import DrugLeakageWarning
    >>> issubclass(DrugLeakageWarning, UserWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", DrugLeakageWarning)
    ...     try:
    ...         warnings.warn("no drug ids", DrugLeakageWarning)
    ...     except DrugLeakageWarning as exc:
    ...         print("raised:", exc)
    raised: no drug ids
    """


def _warn_without_groups(owner, split, stacklevel=3):
    """Warn that ``owner``'s inner ``split`` runs on rows (no drug ids).

    The one place where the advice on passing drug ids is written.
    """
    warnings.warn(
        f"{owner} got no drug ids (groups), so its {split} splits rows: the "
        "replicates of one drug land on both sides and the result is "
        "optimistic for new compounds. Pass the drug ids: without metadata "
        "routing, fit(X, y, groups=drugs), or '<step>__groups=drugs' for a "
        "step of a Pipeline (in cross_val_score / cross_validate / "
        "GridSearchCV: params={'<step>__groups': drugs} next to groups=drugs "
        "for the outer splitter); with metadata routing "
        "(sklearn.set_config(enable_metadata_routing=True)), "
        "set_fit_request(groups=True) on the estimator (make_moa_pipeline "
        "does it) and params={'groups': drugs}. For rows that are truly "
        "independent pass groups=numpy.arange(n_samples); this warning's "
        "class is moa_sklearn.exceptions.DrugLeakageWarning.",
        DrugLeakageWarning,
        stacklevel=stacklevel,
    )
