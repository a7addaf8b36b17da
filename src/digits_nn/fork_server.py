"""Imported last by the sweep's fork server (:func:`digits_nn.sweep.start_fork_server`),
after the modules that a job needs.

It freezes what the server has loaded, as the :mod:`gc` documentation advises before
forking: the workers' garbage collections then leave those objects alone, and with them
the memory pages the workers share with the server. It also spares the server, when it
exits with the sweep, a last collection over them: 0.5-1 s during which it would still
hold the sweep's output streams open.
"""

import gc

gc.freeze()
