"""`--check-policy -`, `--check-policy FILE` and the daemon read a policy
with the same code and the same size limit (GOV_POLICY_MAX_FILE, 1 MiB).

Before, stdin was read by a loop of its own that accepted up to 2 MiB, so a
policy could pass the check and then be refused by the daemon.  Here the
same bytes go through all three ways: exactly at the limit all accept, one
byte more all refuse with the same message.
"""
import subprocess

from daemon import GOVERNORD, Daemon, scaled

LIMIT = 1 << 20
HEAD = b"[governor]\nmode = observe\n"


def policy_of_size(size):
    """A valid policy of exactly size bytes: comment lines of 100 bytes (a
    line may hold 198), then one shorter comment line."""
    body = bytearray(HEAD)
    line = b"; " + b"x" * 97 + b"\n"
    while len(body) + len(line) <= size:
        body += line
    rest = size - len(body)
    if rest:
        body += (b";" + b"y" * (rest - 2) + b"\n") if rest >= 2 else b"\n"
    assert len(body) == size
    return bytes(body)


def check(*args, stdin=None):
    return subprocess.run([GOVERNORD, "--check-policy", *args], input=stdin,
                          capture_output=True, timeout=scaled(30))


def test_the_same_limit_for_stdin_file_and_daemon(tmp_path, cgroup):
    for size, ok in ((LIMIT, True), (LIMIT + 1, False), (LIMIT + 4096, False),
                     (2 * LIMIT - 1, False)):
        data = policy_of_size(size)
        path = tmp_path / f"policy-{size}.ini"
        path.write_bytes(data)

        by_file = check(str(path))
        by_stdin = check("-", stdin=data)
        assert (by_file.returncode == 0) == ok, (size, by_file.stderr)
        assert (by_stdin.returncode == 0) == ok, (size, by_stdin.stderr)
        if ok:
            assert by_stdin.stdout.split(b"\n", 1)[1] == by_file.stdout.split(b"\n", 1)[1]
            assert b"mode = observe" in by_stdin.stdout
        else:
            want = f"file larger than {LIMIT} bytes".encode()
            assert by_file.stderr == f"{path}: ".encode() + want + b"\n"
            assert by_stdin.stderr == b"<stdin>: " + want + b"\n"

        # the daemon agrees: it starts with the policy, or refuses it
        d = Daemon(["--cgroup", cgroup.path, "--policy", str(path)],
                   log_path=tmp_path / f"governord-{size}.log", wait_ready=ok)
        try:
            if ok:
                assert d.status()["mode"] == "observe"
                assert d.stop() == 0
            else:
                assert d.proc.wait(timeout=scaled(10)) == 1
                assert f"file larger than {LIMIT} bytes" in d.log_text()
        finally:
            d.close()


def test_stdin_from_a_pipe_in_pieces(tmp_path):
    # a pipe written in small pieces: the reader loops until EOF
    data = policy_of_size(LIMIT)
    proc = subprocess.Popen([GOVERNORD, "--check-policy", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for i in range(0, len(data), 777):
        proc.stdin.write(data[i:i + 777])
        proc.stdin.flush()
    out, err = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 0, err
    assert b"mode = observe" in out
