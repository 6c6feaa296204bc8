#!/usr/bin/env bash
# Make one ComfyUI version ready for the ComfyUI tier: extract its archive from ../shared/comfyui
# into DEST/ComfyUI-<version> and give it its own virtual environment DEST/venv-<version> (the two
# versions pin different frontends, templates and `av`, so they cannot share one) holding torch,
# ComfyUI's own requirements and this pack's requirements.txt, nothing else.
#   usage: .ci/comfy_env.sh VERSION DEST        (prints nothing on success but pip's summary)
set -euo pipefail
version=$1
dest=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${PULID_STUDIO_SHARED:-$repo/../shared}
archive=$shared/comfyui/ComfyUI-$version.tar.xz
[ -f "$archive" ] || { echo "comfy_env: $archive is missing" >&2; exit 2; }
mkdir -p "$dest"
[ -d "$dest/ComfyUI-$version" ] || tar -xJf "$archive" -C "$dest"
venv=$dest/venv-$version
[ -x "$venv/bin/python" ] || python -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade "pip>=24" "setuptools>=68" wheel
# torch from the builds this machine keeps on disk. No torchaudio release matches that torch, but
# ComfyUI 0.33 imports torchaudio at start-up (comfy/sd.py -> text_encoders/gemma4.py): the newest
# release is installed without its torch pin (it imports fine beside 2.14.1; our nodes never call it).
"${pip[@]}" torch==2.14.1 torchvision==0.29.1
"${pip[@]}" --no-deps torchaudio==2.11.0
grep -v -E '^\s*(torch|torchvision|torchaudio)\s*$' "$dest/ComfyUI-$version/requirements.txt" > "$dest/requirements-$version.txt"
"${pip[@]}" -r "$dest/requirements-$version.txt"
"${pip[@]}" -r "$repo/requirements.txt"
