package scorer

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// exportScript is the PyTorch export documented in docs/scorer.md, on small
// tensors with known values.
const exportScript = `
import json, sys, torch
from safetensors.torch import save_file
item_emb = torch.arange(6, dtype=torch.float32).reshape(3, 2) / 4   # [[0, .25], [.5, .75], [1, 1.25]]
user_emb = torch.tensor([[1.0, -1.0]])
item_bias = torch.tensor([0.5, 0.0, -0.5])
save_file(
    {"item_embeddings": item_emb.detach().float().contiguous(),
     "user_embeddings": user_emb.detach().float().contiguous(),
     "item_bias": item_bias.detach().float().contiguous()},
    sys.argv[1],
    metadata={"format": "lift.embeddings.v1", "name": "shop", "version": "7",
              "training_data": "clicks, March", "created": "2026-03-01T00:00:00Z",
              "metrics": json.dumps({"recall@10": 0.31}),
              "item_ids": json.dumps(["a", "b", "c"]), "user_ids": json.dumps(["u1"])})
`

// TestPyTorchExport runs the documented export with the real safetensors library
// and loads the result. PyTorch and safetensors are on the GPU machine's image,
// where bench/gpu.sh runs this test with LIFT_REQUIRE_CUDA=1 and a missing
// library fails it; elsewhere it skips saying so (Debian 12 packages torch but
// not safetensors).
func TestPyTorchExport(t *testing.T) {
	skip := t.Skipf
	if requireCUDA() {
		skip = t.Fatalf
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		skip("python3 not found; the PyTorch export is checked on the GPU machine (bench/gpu.sh)")
	}
	if out, err := exec.Command(py, "-c", "import torch, safetensors").CombinedOutput(); err != nil {
		skip("python3 lacks torch or safetensors; the PyTorch export is checked on the GPU machine (bench/gpu.sh): %s", out)
	}
	path := filepath.Join(t.TempDir(), "shop.safetensors")
	if out, err := exec.Command(py, "-c", exportScript, path).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	m, err := Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta.Name != "shop" || m.Meta.Version != "7" || m.Meta.Metrics["recall@10"] != 0.31 ||
		!slices.Equal(m.ItemIDs, []string{"a", "b", "c"}) || !slices.Equal(m.UserIDs, []string{"u1"}) ||
		!slices.Equal(m.Items, []float32{0, 0.25, 0.5, 0.75, 1, 1.25}) || !slices.Equal(m.Bias, []float32{0.5, 0, -0.5}) {
		t.Fatalf("loaded %+v", m)
	}
}
