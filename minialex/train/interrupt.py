"""Ctrl-C during training: the first one asks the trainer to stop after the current batch (and save);
the second one aborts at once."""
import signal
from contextlib import contextmanager


@contextmanager
def stop_on_sigint(trainer):
    """Within the block, the first SIGINT sets ``trainer.stop_signalled`` (with one process also
    ``trainer.stop_requested``: the loop stops after the batch); the second raises KeyboardInterrupt.
    Under ``mpiexec`` the ranks first agree on the batch to stop after (``Trainer.train_step``)."""
    def handler(signum, frame):
        if trainer.stop_signalled:
            raise KeyboardInterrupt
        trainer.stop_signalled = True
        if trainer.comm.size == 1:
            trainer.stop_requested = True
        trainer.say("\nCtrl-C: finishing this batch, then saving a checkpoint (Ctrl-C again to abort)")
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:       # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
