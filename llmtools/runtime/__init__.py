"""Persistent Python runtimes for `llm-exec`: one worker process per thread id.

    manager.py    RuntimeManager: starts, feeds, times out, kills and restores workers;
                  lives in the daemon, or in the llm-exec process as the fallback
    process.py    the manager's handle on one worker process (pipes, signals, reads)
    collect.py    following one block's events to its end, with the per-statement clock
    outcome.py    what a call saw of its block, assembled into the result
    results.py    the result, error and helper-context shapes (TypedDicts), one maker each
    worker.py     the worker process (`python -m llmtools.runtime.worker`)
    execution.py  a block of code split into statements and run one by one (in the worker)
    snapshot.py   the namespace saved after every block, restored into a fresh worker
    helpers.py    llm_call, llm_bind, download, ... and the user's own helper modules
    sandbox.py    what the code may touch: bubblewrap policies (workspace, read-only,
                  off), the scrubbed environment, key redaction, default limits
    spawn.py      starting one worker under its policy, with its limits
    limits.py     resource limits inside the worker, and naming the one that fired
    channel.py    llmtools.services called from inside a worker, answered by its parent
    bridge.py     the parent's side of those calls: what it agrees to, with whose keys

Why a separate process per thread rather than threads in the daemon: a statement that
never returns can only be stopped reliably from outside (SIGINT, then SIGKILL), a
statement that exhausts memory or calls os._exit must not take other threads or the
daemon with it, and a resource limit (RLIMIT_AS) applies to a whole process.

Why `subprocess` with a JSON-lines pipe rather than `multiprocessing`: the daemon is
multi-threaded, and forking a multi-threaded process can copy locks held by other
threads (the fork start method); the spawn method would re-import the daemon's
`__main__`. A plain child process speaking a small protocol starts from a clean
interpreter, gets its own session (so a terminal's Ctrl-C reaches only the command that
owns it), and its pid is ours to signal.

Settings (config.toml, all optional; flags of llm-exec take precedence):

    [exec]
    helpers = ["mymodule", "~/llm/helpers.py"]   # more helpers for the model
    timeout = 120         # seconds a statement may run
    memory_mb = 2048      # address-space limit of a worker (RLIMIT_AS; default half the RAM)
    sandbox = "workspace" # workspace, read-only or off (see sandbox.py)
    allow_paths = []      # more paths shown to the code (PATH or PATH:rw)
    allow_net = false     # the network for the code itself
    cpu_seconds = 600     # CPU seconds per block
    max_processes = 256   # processes at once
    max_open_files = 1024
    max_file_mb = 4096
    max_steps = 10        # code blocks one llm-exec call may run
    max_errors = 3        # failed blocks in a row before the model must answer
    max_output = 8000     # characters of a block's output shown to the model

Signals from the manager to a worker: SIGINT stops the running statement (a timeout),
SIGUSR1 cancels the block (interrupt(), Ctrl-C), SIGKILL of its process group when
neither works. A worker exits when its requests pipe or its lifeline pipe closes.
"""
