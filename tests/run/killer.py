"""Run the t2iaudit CLI and SIGKILL it at a chosen file operation (the crash harness's victim).

    python -m tests.run.killer RUN_DIR TARGET_BYTES EXTRA LOG -- audit SPEC --out RUN_DIR -q

An audit hook (PEP 578) watches the file operations of the process on paths inside RUN_DIR
(opening, renaming, removing, truncating, chmod of a file or descriptor, making a folder). Once
``images.jsonl`` and ``judgements.jsonl`` together hold at least TARGET_BYTES, the process
sends itself SIGKILL at the EXTRA-th such operation after that (0: the first). SIGKILL cannot be
caught or cleaned up after, so the run directory is left exactly as a crash, an OOM kill or a
pre-empted cloud machine would leave it: a temporary file not renamed yet, an image without its
record, a manifest update half done. Before dying it writes one line to LOG (the event and path),
so the harness can say where each kill landed.
"""

from __future__ import annotations

import os
import signal
import sys

EVENTS = {"open", "os.rename", "os.remove", "os.truncate", "os.chmod", "os.mkdir"}
COUNTED = ("images.jsonl", "judgements.jsonl")


def install(run_dir: str, target: int, extra: int, log: str) -> None:
    """Arm the kill (see the module docstring)."""
    root = os.path.abspath(run_dir)
    counted = [os.path.join(root, name) for name in COUNTED]
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    state = {"busy": False, "armed": False, "left": extra}

    def size() -> int:
        total = 0
        for path in counted:
            try:
                total += os.stat(path).st_size  # os.stat raises no audit event
            except FileNotFoundError:
                pass
        return total

    def hook(event: str, args: tuple) -> None:
        if event not in EVENTS or state["busy"] or not args:
            return
        target_path = args[0]
        if isinstance(target_path, int):
            where = f"fd {target_path}"
        elif isinstance(target_path, str | bytes | os.PathLike):
            where = os.path.abspath(os.fsdecode(target_path))
            if not (where == root or where.startswith(root + os.sep)):
                return
        else:
            return
        state["busy"] = True
        try:
            if not state["armed"]:
                if size() < target:
                    return
                state["armed"] = True
            if state["left"] > 0:
                state["left"] -= 1
                return
            os.write(log_fd, f"{event}\t{where}\t{size()}\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            state["busy"] = False

    sys.addaudithook(hook)


def main(argv: list[str]) -> None:
    split = argv.index("--")
    run_dir, target, extra, log = argv[:split]
    install(run_dir, int(target), int(extra), log)
    sys.argv = ["t2iaudit", *argv[split + 1 :]]
    from t2iaudit.cli import app

    app()


if __name__ == "__main__":
    main(sys.argv[1:])
