"""CI check: a fresh ComfyUI environment (ComfyUI's requirements + our requirements.txt, nothing else)
starts ComfyUI with the pack copied into custom_nodes, and /object_info lists every node the pack
declares.

    python .ci/check_fresh_env.py COMFYUI_DIR

Run it with the fresh environment's python. The pack is copied (git's tracked files), not linked,
as ComfyUI-Manager installs it. Only the standard library is used here, so the check itself adds
nothing to the environment it checks.
"""

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK_FOLDER = "pulid_flux_studio"


def declared_node_ids() -> set[str]:
    """Every `node_id("X")` in nodes/*.py, as ComfyUI will list it (`PulidStudioX`)."""
    ids = set()
    for path in (REPO / "nodes").glob("*.py"):
        ids |= {f"PulidStudio{name}" for name in re.findall(r'node_id\("(\w+)"\)', path.read_text())}
    return ids


def copy_pack(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(comfyui: Path) -> int:
    expected = declared_node_ids()
    if len(expected) < 10:
        print(f"check_fresh_env: found only {len(expected)} node ids in nodes/*.py; the pattern is stale")
        return 1
    with tempfile.TemporaryDirectory(prefix="pulid_fresh_") as tmp:
        base = Path(tmp)
        copy_pack(base / "custom_nodes" / PACK_FOLDER)
        port = free_port()
        log_path = base / "server.log"
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--base-directory", str(base), "--database-url", "sqlite:///:memory:", "--disable-api-nodes"]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=comfyui, stdout=log, stderr=subprocess.STDOUT)
        try:
            info = None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info", timeout=30) as r:
                        info = json.load(r)
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(1)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        text = log_path.read_text(errors="replace")
        if info is None:
            print(f"check_fresh_env: ComfyUI at {comfyui} did not serve /object_info:\n{text[-4000:]}")
            return 1
        listed = {name for name in info if name.startswith("PulidStudio")}
        missing = sorted(expected - listed)
        # Core's own audio nodes report IMPORT FAILED without torchaudio; only our pack's line counts.
        failed = [line for line in text.splitlines() if "IMPORT FAILED" in line and PACK_FOLDER in line]
        if missing or failed:
            print(f"check_fresh_env: missing nodes {missing}; server log tail:\n{text[-4000:]}")
            return 1
        print(f"check_fresh_env: {comfyui.name}: all {len(expected)} PulidStudio nodes listed "
              f"in a fresh environment (python {sys.version.split()[0]})")
        return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
