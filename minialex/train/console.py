"""What a training run shows on the terminal: tqdm progress bars, and lines printed past them."""
import sys

from tqdm.auto import tqdm


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar on stderr (``disable=None`` hides it when stderr is not a terminal)."""
    return tqdm(iterable, dynamic_ncols=True, **kwargs)


def write_line(line):
    """Print a line to stdout without breaking the progress bars."""
    tqdm.write(line)
    sys.stdout.flush()
