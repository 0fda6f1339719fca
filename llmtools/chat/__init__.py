"""The core of `llm chat`: an interactive session on the same thread model as `llm -c`.

    session.py    the thread, the model, each turn streamed and logged as it happens
    commands.py   the `/` commands
    expand.py     `$(cmd)` and `$$(cmd)` in a message
    editing.py    $EDITOR, /save, /thread-edit, code blocks, the clipboard
    inbox.py      the named pipe other shells write context into
    terminal.py   prompt_toolkit: line editing, history, completion (imported only by `llm chat`)
    loop.py       read a line, run a command or a turn, until Ctrl-D

Nothing here imports click or writes stdout itself: what a session shows goes through
the `ChatUI` the command layer gives it (`llmtools.cli.chat`).
"""
