"""Stand-in for ``python -m server`` that the fork server runs (see ``tests/forkserver.py``): standard library only.

Usage: ``python -I -S tests/launch_server.py SOCKET [server arguments...]``.
"""

import contextlib
import json
import os
import signal
import socket
import sys


def main() -> None:
    path, args = sys.argv[1], sys.argv[2:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    body = json.dumps({"args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(sock, [len(body).to_bytes(4, "big") + body], [0, 1, 2])
    answers = sock.makefile("rb")
    pid = int(answers.readline())
    # stdin and stdout are the server's now: a pipe must close when the server closes it, not when we do.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    line = answers.readline()
    if not line:
        forward(signal.SIGKILL, None)
        print("launch_server: the fork server went away", file=sys.stderr, flush=True)
        os._exit(1)
    status = int(line.split()[1])
    if os.WIFSIGNALED(status):
        killed_by = os.WTERMSIG(status)
        signal.signal(killed_by, signal.SIG_DFL)
        os.kill(os.getpid(), killed_by)
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
