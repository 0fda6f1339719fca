"""llm-buffer: what a program shows in a terminal, as a message (see llm-buffer(1))."""

from __future__ import annotations

import click

from llmtools.cli.main import run
from llmtools.cli.options import SECONDS, content_output_options
from llmtools.cli.options import command as llmtools_command
from llmtools.cli.output import write_content


@llmtools_command("llm-buffer")
@click.argument("command_words", nargs=-1, required=True, metavar="-- CMD [ARGS]...")
@click.option("-s", "--settle", "settle_ms", type=click.IntRange(1), default=500, show_default=True,
              metavar="MS", help="The frame is taken once the screen has not changed for this long.")
@click.option("--max-duration", type=SECONDS, default=30.0, show_default=True, metavar="SECONDS",
              help="Take the frame after this long even if the screen still changes.")
@click.option("--size", default="80x24", show_default=True, metavar="COLSxROWS",
              help="The terminal's size.")
@click.option("--keys", metavar="KEYS",
              help="Keystrokes to type once the screen has settled, e.g. 'F6' or 'Down Down Enter' "
                   "(names: F1-F12 Enter Esc Tab Space Up Down Left Right Home End PageUp PageDown "
                   "Delete Insert Backspace C-x; other words are typed as they are).")
@click.option("--lines", is_flag=True,
              help="Everything the program printed, scrollback included, instead of the last frame.")
@content_output_options(text_help="the frame as it was drawn (never rendered as Markdown)")
def command(command_words: tuple[str, ...], settle_ms: int, max_duration: float, size: str,
            keys: str | None, lines: bool, output_format: str | None, raw: bool) -> int:
    """Run CMD in a pseudo-terminal and emit the screen it settles on, as a user message.

    The output goes through a terminal emulator, so full-screen programs (htop, vim, less)
    give the frame a person would see. The frame is taken once the screen has not changed
    for -s milliseconds, when the program exits, or at --max-duration; then the program is
    stopped (SIGTERM, then SIGKILL). Its own exit status, if it ended by itself, goes into
    meta.exit_status and, when not 0, onto stderr.

    \b
      llm-buffer -- htop | llm "which process uses the most memory? print its pid"
      llm-buffer --lines -- top -b -n 1
    """
    from llmtools import buffer
    from llmtools.notices import warn

    captured = buffer.capture(list(command_words), settle_s=settle_ms / 1000, max_duration_s=max_duration,
                              size=buffer.parse_size(size), keys=keys, lines=lines)
    if captured.exit_status:
        warn(f"{captured.command_line} exited with status {captured.exit_status}")
    elif captured.signal:
        warn(f"{captured.command_line} was killed by signal {captured.signal}")
    if captured.timed_out:
        warn(f"the screen was still changing after {max_duration:g}s; this is the last frame")
    # A frame is not Markdown: rendering would turn a "# ..." line into a heading, "* " into a
    # bullet. It is shown exactly as the program drew it (--raw is accepted, and changes nothing).
    return write_content([captured.message()], output_format, raw=True)


def main() -> None:
    run(command)
