"""Progress bars (tqdm) shared by the nets, the blend and the command line.

A bar is drawn on standard error only when it is a terminal, so that logs
and captured output stay free of carriage returns.
"""

import sys

__all__ = ["progress_bar", "write_line"]


def progress_bar(total, desc, verbose=1, *, unit="it", leave=False):
    """A :class:`tqdm.tqdm` bar on ``sys.stderr``, or a disabled one.

    Parameters
    ----------
    total : int or None
        Number of steps (None: unknown, no estimate of the time left).
    desc : str
        Label of the bar.
    verbose : int, default=1
        0 gives a disabled bar (every method is a no-op).
    unit : str, default="it"
        Unit of a step ("epoch", "fit", "fold").
    leave : bool, default=False
        Keep the finished bar on the screen.

    Returns
    -------
    bar : tqdm.tqdm
        Enabled when ``verbose``, ``sys.stderr`` is a terminal and this is
        not a worker process. Its line shows the steps done, the elapsed time
        and an estimate of the time left.

    Examples
    --------
    >>> from moa_sklearn.utils._progress import progress_bar
    >>> with progress_bar(3, "demo", verbose=0) as bar:
    ...     bar.update(3)
    >>> bar.disable
    True
    """
    import multiprocessing

    from tqdm import tqdm

    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    enabled = bool(verbose) and callable(isatty) and isatty()
    # bars of parallel worker processes (joblib's n_jobs) would overwrite the
    # parent's lines: only the main process draws
    enabled = enabled and multiprocessing.parent_process() is None
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        file=stream,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=0.5,
    )


def write_line(message):
    """Print a line on ``sys.stderr`` without breaking the bars on screen."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
