#!/usr/bin/env bash
# The training and runtime tables on CUDA, in under 5 minutes on one modern GPU.
#
#   bash benchmarks/gpu.sh [OUT_DIR]      # default OUT_DIR: benchmarks/results/gpu
#
# Needs a CUDA build of torch 2.13.0 and onnxruntime-gpu in the active environment (in a venv of
# its own: onnxruntime-gpu and the plain onnxruntime package shadow each other), e.g.
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
#   pip install ./runtime[gpu] ".[cpu,dev]"
# Writes one JSON per table to OUT_DIR: training with AMP off and on (bench_vae.py --device cuda
# [--amp]), the runtime with IO binding (the runtime's CUDA path) and without (a plain
# session.run on the same session), against eager PyTorch and torch.compile on CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu}"
mkdir -p "$OUT"

python - <<'PY'
import sys
import onnxruntime as ort
import torch

if not torch.cuda.is_available():
    sys.exit("gpu.sh: torch sees no CUDA device (install a CUDA build of torch==2.13.0)")
if "CUDAExecutionProvider" not in ort.get_available_providers():
    sys.exit(f"gpu.sh: onnxruntime offers {ort.get_available_providers()}; install onnxruntime-gpu (runtime[gpu])")
# The provider a session really uses, not only the ones offered.
import numpy as np
import onnx
from onnx import TensorProto, helper

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
session = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
got = session.get_providers()
if got[0] != "CUDAExecutionProvider":
    sys.exit(f"gpu.sh: onnxruntime session runs on {got}, not CUDA: check the CUDA/cuDNN libraries")
session.run(None, {"x": np.zeros((1, 4), np.float32)})
print(f"CUDA: torch on {torch.cuda.get_device_name(0)}; onnxruntime providers {got}")
PY

# Training: AMP off, then on (interleaved blocks against the hand-written loop on the same GPU).
python benchmarks/bench_vae.py --device cuda --epochs 0 --blocks 12 --steps 10 --json "$OUT/bench_vae_cuda.json"
python benchmarks/bench_vae.py --device cuda --amp --epochs 0 --blocks 12 --steps 10 --json "$OUT/bench_vae_cuda_amp.json"
# Runtime: the Bundle's CUDA path binds IO; rows also time the same session without binding.
python benchmarks/bench_runtime.py --device cuda --calls 600 --min-calls 100 --rounds 6 --json "$OUT/bench_runtime_cuda.json"
echo "gpu.sh: wrote $OUT/bench_vae_cuda.json, $OUT/bench_vae_cuda_amp.json, $OUT/bench_runtime_cuda.json"
