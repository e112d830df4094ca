#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and answers its prompts.

    pty-drive.py [--prompt TEXT ...] [--timeout S] --send CMD [--send CMD ...] -- COMMAND [ARGS...]

Each time a PROMPT (default "(cowtrace) "; repeatable) appears, the next CMD is typed; with none left,
end of input (Ctrl-D) is sent. The whole transcript is printed on stdout, then a last line
"exit: N" with the command's exit status (128+signal if killed). Used by the tests of
cowtrace's break prompt, and handy to replay a session by hand.
"""
import argparse
import os
import pty
import select
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompt", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--send", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    transcript = b""
    pending = list(args.send)
    prompts = [p.encode() for p in (args.prompt or ["(cowtrace) "])]
    answered = 0  # prompts answered so far
    deadline = time.monotonic() + args.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            transcript += b"\n[pty-drive: timed out]\n"
            os.kill(pid, 9)
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        transcript += chunk
        while sum(transcript.count(p) for p in prompts) > answered:
            answered += 1
            if pending:
                line = pending.pop(0)
                os.write(fd, line.encode() + b"\n")
            else:
                os.write(fd, b"\x04")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.write(transcript.decode(errors="replace").replace("\r\n", "\n"))
    sys.stdout.write("\nexit: %d\n" % (code if code >= 0 else 128 - code))


if __name__ == "__main__":
    main()
