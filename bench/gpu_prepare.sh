#!/usr/bin/env bash
# Recreate the wheels a GPU check carries to the device machine (Python 3.12, no network),
# in the git-ignored `.gpu/` of this checkout:
#
#   .gpu/base/  PyPI's CPU xllamacpp wheel (Pasture's default engine) and every runtime
#               dependency for CPython 3.12 except numpy, which that machine has (~55 MB)
#   .gpu/cuda/  the CUDA build from shared/device/, checked against its sha256 (~53 MB)
#
# A device call carries at most 64 MiB, so the two folders travel in separate calls: see
# bench/gpu_engines.py for the commands. Needs PyPI (pip download) and shared/device/.
#
#   bash bench/gpu_prepare.sh [PYTHON]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${1:-python3}
SHARED=${PASTURE_SHARED:-$(cd "$REPO/.." && pwd)/shared}
CUDA_WHEEL=$SHARED/device/cuda-sm90/xllamacpp-2026.10.11549-cp310-abi3-linux_x86_64.whl
CUDA_SHA256=caf57f77d44f0ba7828e69acea7dfed86cd8b2d60fd7cb2d9e3258cb8843d310
XLLAMACPP=$(grep -o '"xllamacpp==[^"]*"' "$REPO/pyproject.toml" | tr -d '"')

# The versions the test suite runs with here; each one's dependencies are listed too
# (--no-deps keeps the set exact and free of numpy).
PACKAGES=(
    "$XLLAMACPP"
    fastapi==0.165.0 starlette==1.10.0 annotated-doc==0.0.7 opentelemetry-api==1.45.2
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    typing-extensions==4.16.0
    uvicorn==0.54.0 click==8.5.1 h11==0.16.0
    httpx==0.28.1 httpcore==1.0.9 anyio==4.16.0 idna==3.20 certifi==2026.10.19.post1
    rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2
    pygments==2.21.0
    prompt-toolkit==3.0.53 wcwidth==0.9.4
    cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
    gguf==0.19.0 pyyaml==6.0.4 tqdm==4.70.1 requests==2.34.2 urllib3==2.8.0
    charset-normalizer==3.5.3
    nvidia-ml-py==13.615.71  # pynvml: GPU memory and compute capability (pasture.engine)
    llguidance==1.9.1  # checks schemas and grammars up front (pasture.prompt.grammars)
    pillow==13.0.0  # WebP images to PNG (pasture.server.images)
)

cd "$REPO"
rm -rf .gpu/base .gpu/cuda
mkdir -p .gpu/base .gpu/cuda
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --platform manylinux_2_34_x86_64 \
    --platform manylinux_2_31_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform linux_x86_64 -d .gpu/base "${PACKAGES[@]}"

echo "$CUDA_SHA256  $CUDA_WHEEL" | sha256sum --check --quiet
cp "$CUDA_WHEEL" .gpu/cuda/
chmod u+w .gpu/cuda/*.whl

du -sh .gpu/base .gpu/cuda
