"""The two consoles every command prints through: results on stdout, warnings on stderr.

One pair for the whole command line, so a result and a warning about it never disagree on width
(:func:`ethos.terminal.output_console` keeps piped output wide).
"""

from __future__ import annotations

import os

from ethos.terminal import output_console

console = output_console()
err_console = output_console(stderr=True)
# Under `accelerate launch` every process runs the whole command; only the main one (RANK 0)
# prints results, so a launch of N processes says things once. Errors print from every process.
console.quiet = os.environ.get("RANK", "0") not in ("", "0")
