"""Imported last by the sweep's fork server (:func:`digits_nn.sweeps.workers.start_fork_server`),
after the modules that a job needs. Its forks, the joblib workers, inherit what it sets.

- One BLAS and OpenMP thread: the launcher runs one worker per core. loky sets this
  through the environment of each new interpreter it starts; a fork inherits the
  server's thread pools instead.
- Everything loaded so far is frozen, as the :mod:`gc` documentation advises before
  forking: the workers' garbage collections leave those objects alone, and with them the
  memory pages the workers share with the server. It also spares the server, when it
  exits with the sweep, a last collection over them, during which it would still hold
  the sweep's output streams open.
"""

import gc

from threadpoolctl import threadpool_limits

threadpool_limits(limits=1)
gc.freeze()
