//go:build !linux

package scorer

import (
	"context"

	"github.com/liftlab/lift/experiment"
)

func newCUDA(ctx context.Context, m *Model, opts Options) (Scorer, error) {
	return nil, experiment.E("scorer.NewCUDA", experiment.Unavailable, experiment.Errorf("the cuda backend runs on Linux only"))
}
