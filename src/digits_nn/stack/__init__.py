"""The local stack to try and test scaling out: PostgreSQL, an MLflow server with accounts,
a one-node SLURM cluster and, with ``--ray``, a Ray head.

    python -m digits_nn.stack up [--ray]   # start what is not running yet (idempotent)
    eval "$(python -m digits_nn.stack env)" # the shell's MLflow, SLURM and Ray settings
    python -m digits_nn.stack status        # what runs, with pids and ports
    python -m digits_nn.stack down          # stop every process it started, by pid
    python -m digits_nn.stack purge         # down, then delete its data and secrets

Everything lives under ``.stack/`` at the repository root (git-ignored, 0700): logs,
pids, ports and the generated secrets (0600). PostgreSQL's and munge's files live in a
folder of the stack's outside the repository (``.stack/services`` links to it), which
their users can reach wherever the repository is. Every daemon listens on 127.0.0.1
only, and the stack signals only the processes it started (each recorded with its start).
The pipeline never imports this package: it talks to whatever server and cluster the
environment names, this stack or a team's real one.

Waiting and ports: ``port_for`` picks free local ports. mirakuru was considered, but it
kills the processes it started when the starting interpreter exits, and these daemons
must outlive ``up``; waiting is a short poll of the service's own readiness check.

May import only the standard library and its own modules (and ``port_for`` for free
ports); nothing of the pipeline imports it (a test checks both).
"""
