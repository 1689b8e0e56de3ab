"""Writes tests/golden/safetensors_python.safetensors with the reference safetensors package.

Run once from the repository root; the file is committed. The values are exact in their dtypes,
so tests/test_io_safetensors.cpp compares them exactly. The metadata records this script and the
package versions that made the file.
"""
import safetensors
import torch
from safetensors.torch import save_file

tensors = {
    "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4 - 0.5,
    "f16": torch.tensor([1.0, -2.0, 2.0**-14, 2.0**-24, 65504.0, float("inf"), -0.0],
                        dtype=torch.float16),
    "bf16": torch.tensor([[1.0, -0.5], [3.140625, 256.0]], dtype=torch.bfloat16),
    "f64": torch.tensor([0.1, -1e300, 2.5], dtype=torch.float64),
    "i64": torch.tensor([1, -2], dtype=torch.int64),
    "scalar": torch.tensor(7.25, dtype=torch.float32),
}
metadata = {
    "script": "tools/golden/make_safetensors_sample.py",
    "safetensors": safetensors.__version__,
    "torch": torch.__version__,
}
save_file(tensors, "tests/golden/safetensors_python.safetensors", metadata=metadata)
