#!/usr/bin/env python3
"""tests/bench/measure.py - run one command, report wall time and memory.

    measure.py [--user USER] [--stdout FILE] [--cwd DIR] -- CMD [ARG...]

Prints one line "WALL_S MAXRSS_KB TREE_KB CPU_S":

  WALL_S     wall-clock seconds from fork to the command's exit.
  MAXRSS_KB  /usr/bin/time's %M (ru_maxrss from wait4): the peak resident
             set of the largest single process of the command's tree (the
             command and every descendant it waited for). It is a maximum,
             not a sum: for a tool that forks workers (pgBackRest) it is the
             largest one of them.
  TREE_KB    the peak of the *sum* of the RSS of every process of the
             command's session, sampled every 20 ms from /proc (a short
             peak between samples can be missed; shared pages are counted
             once per process). This is what a tree of processes costs.
  CPU_S      user + system CPU seconds of the command and the descendants
             it waited for (/usr/bin/time %U + %S): less disturbed than the
             wall time by other work on the machine.

The command runs in a session of its own, as USER when given (the caller
must be root), with stdin from /dev/null. Its stderr is kept and printed
when it fails; the exit status is then the command's.
"""
import os
import pwd
import subprocess
import sys
import tempfile
import threading
import time

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def session_rss_kb(sid):
    """Sum of the RSS of the processes whose session id is sid."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            # fields after the command name (which may hold spaces)
            rest = stat[stat.rindex(b")") + 2:].split()
            if int(rest[3]) != sid or int(name) == sid:  # field 6: session id; not time itself
                continue
            with open(f"/proc/{name}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def main(argv):
    user = out = cwd = None
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        if opt == "--user":
            user = argv.pop(0)
        elif opt == "--stdout":
            out = argv.pop(0)
        elif opt == "--cwd":
            cwd = argv.pop(0)
        else:
            sys.exit(f"measure.py: unknown option {opt}")
    if not argv or len(argv) < 2:
        sys.exit("usage: measure.py [--user USER] [--stdout FILE] [--cwd DIR] -- CMD [ARG...]")
    cmd = argv[1:]
    if user and os.getuid() == 0:
        # setpriv execs the command in place (no extra process).
        pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] + cmd
    # /usr/bin/time reports the peak RSS (wait4) of its own child; asking
    # getrusage here would count this Python too, since a child forked
    # from it starts with its peak RSS (Linux keeps the pre-exec peak).
    tfile = tempfile.NamedTemporaryFile(prefix="measure.", suffix=".time")
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tfile.name] + cmd
    stdout = open(out, "wb") if out else subprocess.DEVNULL
    err = tempfile.TemporaryFile()
    peak = [0]
    done = threading.Event()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err,
                            start_new_session=True, cwd=cwd)

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], session_rss_kb(proc.pid))
            done.wait(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    rc = proc.wait()
    wall = time.monotonic() - start
    done.set()
    t.join()
    try:
        f = open(tfile.name).read().split()
        maxrss, cpu = int(f[-3]), float(f[-2]) + float(f[-1])
    except (OSError, ValueError, IndexError):
        maxrss, cpu = 0, 0.0
    if rc != 0:
        err.seek(0)
        sys.stderr.write(f"measure.py: {' '.join(cmd)} exited {rc}:\n")
        sys.stderr.write(err.read().decode(errors="replace")[-4000:])
        return rc if rc > 0 else 1
    print(f"{wall:.3f} {maxrss} {max(peak[0], maxrss)} {cpu:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
