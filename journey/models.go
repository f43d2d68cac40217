package journey

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// Model is a loaded personalization model: the embeddings, the backend that ranks
// them, a Batcher that coalesces concurrent decisions into one backend call, and
// the model card when one was found beside the file.
type Model struct {
	Name    string
	Path    string // the safetensors file ("" for a model built in memory)
	Model   *scorer.Model
	Scorer  scorer.Scorer
	Card    *scorer.Card // nil when the file has no card
	batcher *scorer.Batcher

	inflight atomic.Int64 // requests in the batcher now
	ewma     atomic.Int64 // smoothed time of a successful batcher call, ns (0: none yet)
}

// admit reports whether a request arriving now can be ranked within remaining:
// with n requests in the batcher (this one included), batches of at most b (the
// batcher's current limit) and a smoothed call time t, it expects to wait
// ⌈n / b⌉·t. The first batch's worth of requests is always admitted, so that the
// estimate keeps being refreshed. The caller must call done after the batcher
// call when admitted.
func (m *Model) admit(remaining time.Duration) bool {
	n := m.inflight.Add(1)
	t := m.ewma.Load()
	b := int64(m.batcher.Limit())
	if n <= b || t == 0 {
		return true
	}
	if time.Duration((n+b-1)/b*t) > remaining {
		m.inflight.Add(-1)
		return false
	}
	return true
}

// done records an admitted call's end; ok calls update the smoothed time
// (exponential moving average, weight 1/8 on the newest).
func (m *Model) done(took time.Duration, ok bool) {
	m.inflight.Add(-1)
	if !ok {
		return
	}
	for {
		old := m.ewma.Load()
		v := int64(took)
		if old != 0 {
			v = old + (int64(took)-old)/8
		}
		if m.ewma.CompareAndSwap(old, v) {
			return
		}
	}
}

// Version is the model's version from its metadata.
func (m *Model) Version() string { return m.Model.Meta.Version }

// Models is the set of models a Decider serves, by name. It is immutable once
// built and safe for concurrent use.
type Models struct {
	byName map[string]*Model
}

// NewModels serves the given models, each through a Batcher with opts. Models
// take ownership of the scorers: Close closes them. Unless opts says otherwise, a
// batch is capped to what the scorer is expected to rank in three quarters of the
// default latency budget (scorer.BatchOptions.MaxCallTime; negative: no cap), so
// that a slow scorer (a big catalog on few cores) never makes calls longer than
// the budget, in which every request would time out; the admission check then
// sends requests that could not wait for their call to the control journey.
func NewModels(opts scorer.BatchOptions, ms ...*Model) (*Models, error) {
	if opts.MaxCallTime == 0 {
		opts.MaxCallTime = experiment.DefaultLatencyBudget * 3 / 4
	}
	out := &Models{byName: map[string]*Model{}}
	for i, m := range ms {
		if m.Name == "" || m.Model == nil || m.Scorer == nil {
			return nil, experiment.E("journey.NewModels", experiment.Invalid, experiment.Field(fmt.Sprintf("models[%d]", i)),
				experiment.Errorf("a model needs a name, embeddings and a scorer"))
		}
		if _, dup := out.byName[m.Name]; dup {
			return nil, experiment.E("journey.NewModels", experiment.Invalid, experiment.Field(fmt.Sprintf("models[%d].name", i)),
				experiment.Errorf("duplicate model name %q", m.Name))
		}
		m.batcher = scorer.NewBatcher(m.Scorer, opts)
		out.byName[m.Name] = m
	}
	return out, nil
}

// LoadOptions configures LoadModels.
type LoadOptions struct {
	Kind   string              // scorer backend: auto, cpu, cuda or remote (default cpu)
	Scorer scorer.Options      // backend options
	Batch  scorer.BatchOptions // dynamic batching
}

// LoadModels loads every NAME.safetensors file of dir (the model's name is its
// metadata name, else the file name), opens a scorer of opt.Kind over each, and
// reads the card NAME.card.json beside it when present. Fold-in is prepared at
// load so that the first unknown unit does not pay for it.
func LoadModels(ctx context.Context, dir string, opt LoadOptions) (*Models, error) {
	const op = "journey.LoadModels"
	if opt.Kind == "" {
		opt.Kind = scorer.KindCPU
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("--models"), experiment.Errorf("reading the model folder: %v", err))
	}
	var ms []*Model
	closeAll := func() {
		for _, m := range ms {
			m.Scorer.Close()
		}
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".safetensors") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		sm, err := scorer.Load(ctx, path)
		if err != nil {
			closeAll()
			return nil, experiment.E(op, fmt.Errorf("model %s: %w", path, err))
		}
		sm.PrepareFoldIn()
		name := sm.Meta.Name
		if name == "" {
			name = strings.TrimSuffix(e.Name(), ".safetensors")
		}
		s, err := scorer.Open(ctx, opt.Kind, sm, opt.Scorer)
		if err != nil {
			closeAll()
			return nil, experiment.E(op, fmt.Errorf("model %s: %w", path, err))
		}
		m := &Model{Name: name, Path: path, Model: sm, Scorer: s}
		ms = append(ms, m)
		jsonPath, _ := scorer.CardPaths(path)
		card, err := scorer.LoadCard(ctx, jsonPath)
		switch {
		case err == nil:
			m.Card = card
		case errors.Is(err, fs.ErrNotExist):
		default:
			closeAll()
			return nil, experiment.E(op, fmt.Errorf("model card %s: %w", jsonPath, err))
		}
	}
	out, err := NewModels(opt.Batch, ms...)
	if err != nil {
		closeAll()
		return nil, experiment.E(op, err)
	}
	return out, nil
}

// Get returns the model named name.
func (ms *Models) Get(name string) (*Model, bool) {
	if ms == nil {
		return nil, false
	}
	m, ok := ms.byName[name]
	return m, ok
}

// List returns the models by name.
func (ms *Models) List() []*Model {
	if ms == nil {
		return nil
	}
	out := make([]*Model, 0, len(ms.byName))
	for _, m := range ms.byName {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops the batchers and closes the scorers.
func (ms *Models) Close() error {
	if ms == nil {
		return nil
	}
	var errs []error
	for _, m := range ms.byName {
		m.batcher.Close()
		errs = append(errs, m.Scorer.Close())
	}
	return errors.Join(errs...)
}
