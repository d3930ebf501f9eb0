"""Keep third-party noise off the user's terminal.

TF-Lite, XNNPACK, absl and oneDNN print banners from C++ straight to file descriptor 2,
where no Python logging setting reaches them ("All log messages before
absl::InitializeLog()…", "Created TensorFlow Lite XNNPACK delegate…"). ``filtered_stderr``
routes fd 2 through a pipe and drops only lines matching known banners; everything else,
warnings and tracebacks included, passes through unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager

NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"Created TensorFlow Lite XNNPACK delegate|^[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]|"
    r"cpu_feature_guard|This TensorFlow binary is optimized|TF-TRT Warning|"
    r"experimental_preserve_all_tensors|warnings\.warn\(|FutureWarning: `isinstance\(treespec|return cls\.__new__"
)


@contextmanager
def filtered_stderr(enabled: bool = True):
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:  # no real fd 2 (e.g. an embedding host): leave it alone
        yield
        return

    def pump():
        with os.fdopen(read_end, "rb") as f:
            for line in f:
                if not NOISE.search(line.decode("utf-8", errors="replace")):
                    os.write(saved, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # the pipe's last writer goes away: the pump reads EOF and stops
        thread.join(timeout=2)
        os.close(saved)
