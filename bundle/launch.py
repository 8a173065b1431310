"""Start clevertap-mcp from an MCP Bundle on a machine that has Python but not uv.

On first run it creates a virtual environment and installs the bundled package into it (editable, so the bundle's
own code runs, with its dependencies from PyPI); later runs reuse it until the bundle's pyproject.toml changes.
Then it runs ``python -m server`` in that environment with the arguments it was given.

Everything it says goes to stderr: stdout belongs to JSON-RPC. Deliberately written for old Pythons too
(3.6+ syntax only), so that an interpreter that is too old is told so plainly instead of failing to parse.

Environment: CLEVERTAP_MCP_VENV chooses where the environment lives (default: ``.runtime`` next to the bundle,
else a user cache directory); CLEVERTAP_MCP_PYTHON names the interpreter to use.
"""

import hashlib
import os
import shutil
import subprocess
import sys

MIN_PYTHON = (3, 10)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP_NAME = "clevertap-mcp-install.stamp"
OUR_PREFIXES = ("CLEVERTAP_", "MEMBRANE_")


def say(message):
    sys.stderr.write("clevertap-mcp launcher: " + message + "\n")
    sys.stderr.flush()


def clean_environment(env):
    """Drop our variables that the host left empty or unsubstituted (``${user_config.x}`` when a field was unset)."""
    for key in list(env):
        if key.startswith(OUR_PREFIXES):
            value = env[key].strip()
            if not value or value.startswith("${"):
                del env[key]
    return env


def python_candidates():
    """Other interpreters worth trying when this one is too old, newest first."""
    names = ["python3.13", "python3.12", "python3.11", "python3.10", "python3", "python"]
    dirs = ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin"]
    found = []
    override = os.environ.get("CLEVERTAP_MCP_PYTHON", "").strip()
    if override:
        found.append(override)
    for name in names:
        path = shutil.which(name)
        if path:
            found.append(path)
        for d in dirs:
            candidate = os.path.join(d, name)
            if os.path.isfile(candidate):
                found.append(candidate)
    unique = []
    for path in found:
        if path not in unique and os.path.realpath(path) != os.path.realpath(sys.executable):
            unique.append(path)
    return unique


def interpreter_version(path):
    try:
        out = subprocess.check_output(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], stderr=subprocess.DEVNULL, timeout=20
        )
        major, minor = out.decode().strip().split(".")
        return int(major), int(minor)
    except Exception:
        return None


def ensure_new_enough_python(argv):
    """Re-run this launcher with a newer Python when the current one is too old, or explain what is needed."""
    if sys.version_info[:2] >= MIN_PYTHON:
        return
    for candidate in python_candidates():
        version = interpreter_version(candidate)
        if version is not None and version >= MIN_PYTHON:
            old = "{}.{}".format(*sys.version_info[:2])
            say(f"Python {old} is too old; using {candidate} (Python {version[0]}.{version[1]})")
            sys.exit(hand_over([candidate, os.path.abspath(__file__), *argv], dict(os.environ)))
    need = "{}.{}".format(*MIN_PYTHON)
    have = "{}.{}".format(*sys.version_info[:2])
    say(
        f"clevertap-mcp needs Python {need} or newer, but {sys.executable} is Python {have} and no newer one was "
        "found. Install Python 3.10+ from https://www.python.org/downloads/ (or set CLEVERTAP_MCP_PYTHON to its "
        "path) and restart the app."
    )
    sys.exit(3)


def user_cache_dir():
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "clevertap-mcp")


def venv_dir():
    override = os.environ.get("CLEVERTAP_MCP_VENV", "").strip()
    if override:
        return os.path.abspath(os.path.expanduser(override))
    if os.access(ROOT, os.W_OK):
        return os.path.join(ROOT, ".runtime")
    digest = hashlib.sha256(ROOT.encode("utf-8")).hexdigest()[:12]
    return os.path.join(user_cache_dir(), "runtime-" + digest)


def venv_python(directory):
    if sys.platform == "win32":
        return os.path.join(directory, "Scripts", "python.exe")
    return os.path.join(directory, "bin", "python")


def install_stamp():
    """Changes when the package's dependencies or this interpreter change (code changes need no reinstall)."""
    h = hashlib.sha256()
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        h.update(f.read())
    h.update(f"{sys.version}|{os.path.realpath(sys.executable)}".encode())
    return h.hexdigest()


def read_stamp(directory):
    try:
        with open(os.path.join(directory, STAMP_NAME)) as f:
            return f.read().strip()
    except OSError:
        return None


def run(cmd, **kwargs):
    """Run ``cmd`` with its stdout sent to our stderr (stdout is reserved for JSON-RPC)."""
    return subprocess.call(cmd, stdout=sys.stderr, **kwargs)


def prepare(directory):
    """Create the environment and install the bundle into it, unless an up-to-date one is there."""
    stamp = install_stamp()
    if read_stamp(directory) == stamp and os.path.isfile(venv_python(directory)):
        return venv_python(directory)
    say(f"first run: installing clevertap-mcp and its dependencies into {directory} (needs PyPI; about a minute)")
    building = f"{directory}.tmp-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    try:
        os.makedirs(os.path.dirname(building), exist_ok=True)
        if run([sys.executable, "-m", "venv", building]) != 0:
            raise RuntimeError(
                f"could not create a virtual environment with {sys.executable}. On Debian/Ubuntu install "
                "python3-venv (sudo apt install python3-venv); elsewhere reinstall Python from python.org."
            )
        pip = [venv_python(building), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        if run([*pip, "-q", "-e", ROOT]) != 0:
            raise RuntimeError(
                "installing the bundled package failed (see pip's messages above). The first run needs access to "
                "PyPI; behind a proxy set HTTPS_PROXY, or install by hand: pip install clevertap-mcp"
            )
        with open(os.path.join(building, STAMP_NAME), "w") as f:
            f.write(stamp)
        if os.path.isdir(directory):
            shutil.rmtree(directory, ignore_errors=True)
        try:
            os.replace(building, directory)
        except OSError:
            if read_stamp(directory) != stamp:  # another launcher did not win the race either
                raise
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(building, ignore_errors=True)
        say(str(exc))
        sys.exit(4)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    say("installed; starting the server")
    return venv_python(directory)


def main(argv):
    ensure_new_enough_python(argv)
    install_only = "--install-only" in argv
    argv = [a for a in argv if a != "--install-only"]
    python = prepare(venv_dir())
    if install_only:
        say(f"environment ready: {python}")
        return 0
    env = clean_environment(dict(os.environ))
    # -I: never import a stray "server" package from the working directory.
    return hand_over([python, "-I", "-m", "server", *argv], env)


def hand_over(cmd, env):
    """Become ``cmd`` (stdin/stdout stay the host's JSON-RPC pipe); Windows has no real exec, so wait for it."""
    if sys.platform == "win32":
        return subprocess.call(cmd, env=env)
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
