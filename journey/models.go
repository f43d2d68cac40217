package journey

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
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

	closeOnce sync.Once
	stamp     fileStamp    // of Path when it was loaded
	inflight  atomic.Int64 // requests in the batcher now
	ewma      atomic.Int64 // smoothed time of a successful batcher call, ns (0: none yet)
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

// close stops the model's batcher and closes its scorer, once.
func (m *Model) close() error {
	var err error
	m.closeOnce.Do(func() {
		m.batcher.Close()
		err = m.Scorer.Close()
	})
	return err
}

// Models is the set of models a Decider serves, by name. It is safe for
// concurrent use: Get never blocks, and Reload swaps one model for a new version
// of it (copy on write), so a decision sees either the old or the new model.
type Models struct {
	byName atomic.Pointer[map[string]*Model]
	batch  scorer.BatchOptions
	load   LoadOptions // of reloads
	dir    string      // folder of LoadModels ("" for NewModels)

	mu      sync.Mutex    // serializes Reload, Close and the retired list
	retired []*Model      // replaced models not yet closed
	timers  []*time.Timer // their retirements
	closed  bool
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
	byName := map[string]*Model{}
	for i, m := range ms {
		if m.Name == "" || m.Model == nil || m.Scorer == nil {
			return nil, experiment.E("journey.NewModels", experiment.Invalid, experiment.Field(fmt.Sprintf("models[%d]", i)),
				experiment.Errorf("a model needs a name, embeddings and a scorer"))
		}
		if _, dup := byName[m.Name]; dup {
			return nil, experiment.E("journey.NewModels", experiment.Invalid, experiment.Field(fmt.Sprintf("models[%d].name", i)),
				experiment.Errorf("duplicate model name %q", m.Name))
		}
		m.batcher = scorer.NewBatcher(m.Scorer, opts)
		byName[m.Name] = m
	}
	out := &Models{batch: opts, load: LoadOptions{Kind: scorer.KindCPU, Batch: opts}}
	out.byName.Store(&byName)
	return out, nil
}

// LoadOptions configures LoadModels.
type LoadOptions struct {
	Kind   string              // scorer backend: auto, cpu, cuda or remote (default cpu)
	Scorer scorer.Options      // backend options
	Batch  scorer.BatchOptions // dynamic batching
	// AllowUndeployable loads models that failed a training gate (their metadata
	// carries scorer.MetaNotDeployable); without it LoadModels refuses them.
	AllowUndeployable bool
	// RetireAfter is how long a model replaced by Reload keeps serving the
	// decisions that already hold it before it is closed (default 30 s, longer
	// than any latency budget); it is closed only once none is scoring on it.
	RetireAfter time.Duration
	// Audit, when set, records every reload attempt (by Reload and Watch), the
	// refused ones included (StoreAudit writes them to the store's audit log).
	// A loaded model is swapped in only once its record is written: when Audit
	// fails, the old version keeps serving and Reload returns the error.
	Audit func(ctx context.Context, r ReloadRecord) error
}

// Reload triggers (ReloadRecord.Trigger).
const (
	TriggerAPI   = "api"   // POST /v1/models/NAME/reload
	TriggerWatch = "watch" // lift serve --models-watch
)

// Reload results (ReloadRecord.Result).
const (
	ReloadLoaded  = "loaded"
	ReloadRefused = "refused"
)

// ReloadRequest is one request to reload a model.
type ReloadRequest struct {
	Name    string
	Force   bool   // load a model that failed a training gate
	Actor   string // who asked: the API key's name, or "system" for the watch
	Trigger string // TriggerAPI or TriggerWatch
}

// ReloadRecord is the audit record of one reload attempt: who asked (Actor,
// Trigger), which model, the version that served before and the version the
// file holds, and the result; a refusal says why (Code is the error's kind:
// conflict for a model marked not deployable, invalid for a file that does not
// load, not_found, unavailable for a scorer that failed its probe).
type ReloadRecord struct {
	Model      string `json:"model"`
	Actor      string `json:"actor"`
	Trigger    string `json:"trigger"`
	Force      bool   `json:"force,omitempty"`
	File       string `json:"file,omitempty"`
	OldVersion string `json:"old_version,omitempty"` // serving before ("" when the model was not loaded)
	NewVersion string `json:"new_version,omitempty"` // the file's version ("" when the file did not decode)
	Serving    string `json:"serving"`               // the version serving after the attempt ("" when none)
	Result     string `json:"result"`                // ReloadLoaded or ReloadRefused
	Code       string `json:"code,omitempty"`
	Error      string `json:"error,omitempty"`
	// NotDeployable is the training gate's verdict carried by the file, when any
	// (a forced reload loads it anyway).
	NotDeployable string `json:"not_deployable,omitempty"`
}

// Audit actions of StoreAudit.
const (
	ActionModelReload        = "model.reload"
	ActionModelReloadRefused = "model.reload_refused"
)

// StoreAudit returns a LoadOptions.Audit that writes each reload attempt to db's
// audit log: entity "model", key the model's name, action ActionModelReload or
// ActionModelReloadRefused, before {"version": old} (absent when the model was
// not loaded), after the ReloadRecord.
func StoreAudit(db *store.DB) func(ctx context.Context, r ReloadRecord) error {
	return func(ctx context.Context, r ReloadRecord) error {
		action := ActionModelReload
		if r.Result != ReloadLoaded {
			action = ActionModelReloadRefused
		}
		var before any
		if r.OldVersion != "" {
			before = map[string]string{"version": r.OldVersion}
		}
		return db.RecordAudit(ctx, r.Actor, action, "model", r.Model, before, r)
	}
}

// DefaultRetireAfter is LoadOptions.RetireAfter's default.
const DefaultRetireAfter = 30 * time.Second

// LoadModels loads every NAME.safetensors file of dir (the model's name is its
// metadata name, else the file name), opens a scorer of opt.Kind over each, and
// reads the card NAME.card.json beside it when present. Fold-in is prepared at
// load so that the first unknown unit does not pay for it. A model that failed a
// training gate is refused unless opt.AllowUndeployable.
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
		m, err := loadModel(ctx, filepath.Join(dir, e.Name()), opt, opt.AllowUndeployable)
		if err != nil {
			closeAll()
			return nil, experiment.E(op, err)
		}
		ms = append(ms, m)
	}
	out, err := NewModels(opt.Batch, ms...)
	if err != nil {
		closeAll()
		return nil, experiment.E(op, err)
	}
	out.load, out.dir = opt, dir
	return out, nil
}

// loadModel reads the model file at path and its card, checks it, and opens a
// scorer over it (the caller makes its batcher). The check: the file decodes and
// validates (scorer.Load), the model passed its training gates unless
// allowUndeployable, and the new scorer ranks a probe query (the first user's
// vector, or the first item's) without error.
func loadModel(ctx context.Context, path string, opt LoadOptions, allowUndeployable bool) (*Model, error) {
	m, _, err := loadModelFile(ctx, path, opt, allowUndeployable)
	return m, err
}

// loadModelFile is loadModel that also returns the file's metadata once it
// decoded (nil before), for the audit record of a refusal.
func loadModelFile(ctx context.Context, path string, opt LoadOptions, allowUndeployable bool) (*Model, *scorer.Metadata, error) {
	st := stampOf(path) // before reading: a change during the load is seen by Watch
	sm, err := scorer.Load(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", path, err)
	}
	meta := &sm.Meta
	name := sm.Meta.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), ".safetensors")
	}
	if why := sm.NotDeployable(); why != "" && !allowUndeployable {
		return nil, meta, experiment.E(experiment.Conflict, experiment.Field(scorer.MetaNotDeployable), experiment.Errorf(
			"model %s (%s) is marked not deployable by its training gate: %s (load it anyway with --allow-undeployable, or force=true on reload)", name, path, why))
	}
	sm.PrepareFoldIn()
	kind := opt.Kind
	if kind == "" {
		kind = scorer.KindCPU
	}
	s, err := scorer.Open(ctx, kind, sm, opt.Scorer)
	if err != nil {
		return nil, meta, fmt.Errorf("model %s: %w", path, err)
	}
	probe := sm.Item(0)
	if sm.NUsers() > 0 {
		probe = sm.User(0)
	}
	if _, err := s.Score(ctx, [][]float32{probe}, min(10, sm.NItems()), nil); err != nil {
		s.Close()
		return nil, meta, experiment.E(experiment.Unavailable, fmt.Errorf("model %s: the %s scorer failed a probe query: %w", path, s.Name(), err))
	}
	m := &Model{Name: name, Path: path, Model: sm, Scorer: s, stamp: st}
	jsonPath, _ := scorer.CardPaths(path)
	card, err := scorer.LoadCard(ctx, jsonPath)
	switch {
	case err == nil:
		m.Card = card
	case errors.Is(err, fs.ErrNotExist):
	default:
		s.Close()
		return nil, meta, fmt.Errorf("model card %s: %w", jsonPath, err)
	}
	return m, meta, nil
}

// Reload loads the current file of the model named r.Name (its file, or for a
// model not loaded yet NAME.safetensors in the folder of LoadModels) and card,
// checks it (see LoadModels; r.Force loads a model that failed a training gate),
// and swaps it in: decisions that started before keep the old version, later
// ones get the new. The old version is closed after LoadOptions.RetireAfter, once
// nothing scores on it. On any error the old version keeps serving, and the
// error says why: not_found (no such file), invalid (the file does not decode or
// validate, or names another model), conflict (not deployable), unavailable (the
// scorer failed its probe). Every attempt, refused or not, is given to
// LoadOptions.Audit (with r's actor and trigger) before Reload returns. It
// returns the new model and the replaced one (nil when the name was new).
func (ms *Models) Reload(ctx context.Context, r ReloadRequest) (loaded, replaced *Model, err error) {
	const op = "journey.Models.Reload"
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.closed {
		return nil, nil, experiment.E(op, experiment.Unavailable, experiment.Errorf("the models are closed"))
	}
	name := r.Name
	old := (*ms.byName.Load())[name]
	rec := ReloadRecord{Model: name, Actor: r.Actor, Trigger: r.Trigger, Force: r.Force, Result: ReloadRefused}
	if rec.Actor == "" {
		rec.Actor = "system"
	}
	if old != nil {
		rec.OldVersion, rec.Serving = old.Version(), old.Version()
	}
	m, err := ms.load1(ctx, name, old, r.Force, &rec)
	if err != nil {
		err = experiment.E(op, err)
		rec.Code, rec.Error = experiment.KindOf(err).String(), err.Error()
		if aerr := ms.audit(ctx, rec); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, nil, err
	}
	rec.Result, rec.Serving = ReloadLoaded, m.Version()
	if err := ms.audit(ctx, rec); err != nil {
		m.Scorer.Close()
		return nil, nil, experiment.E(op, experiment.Unavailable, experiment.Errorf("the reload could not be audited, so the old version keeps serving: %w", err))
	}
	m.batcher = scorer.NewBatcher(m.Scorer, ms.batch)
	next := make(map[string]*Model, len(*ms.byName.Load())+1)
	for k, v := range *ms.byName.Load() {
		next[k] = v
	}
	next[name] = m
	ms.byName.Store(&next)
	if old != nil {
		ms.retire(old)
	}
	return m, old, nil
}

// load1 loads and checks the file of the model name for Reload, filling rec's
// file, new version and gate verdict as far as it got.
func (ms *Models) load1(ctx context.Context, name string, old *Model, force bool, rec *ReloadRecord) (*Model, error) {
	path := ""
	switch {
	case old != nil && old.Path != "":
		path = old.Path
	case ms.dir != "" && experiment.ValidKey(name):
		path = filepath.Join(ms.dir, name+".safetensors")
	default:
		return nil, experiment.E(experiment.NotFound, experiment.Field("name"), experiment.Errorf("model %q has no file to reload from", name))
	}
	rec.File = path
	m, meta, err := loadModelFile(ctx, path, ms.load, force || ms.load.AllowUndeployable)
	if meta != nil {
		rec.NewVersion, rec.NotDeployable = meta.Version, meta.Extra[scorer.MetaNotDeployable]
	}
	if err != nil {
		return nil, err
	}
	if m.Name != name {
		m.Scorer.Close()
		return nil, experiment.E(experiment.Invalid, experiment.Field(scorer.MetaName),
			experiment.Errorf("%s holds model %q, not %q", path, m.Name, name))
	}
	return m, nil
}

// auditDefault sets LoadOptions.Audit to f when it is not set.
func (ms *Models) auditDefault(f func(ctx context.Context, r ReloadRecord) error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.load.Audit == nil {
		ms.load.Audit = f
	}
}

// audit gives rec to LoadOptions.Audit, when set.
func (ms *Models) audit(ctx context.Context, rec ReloadRecord) error {
	if ms.load.Audit == nil {
		return nil
	}
	return ms.load.Audit(ctx, rec)
}

// retire closes m after the retirement delay, once no call is scoring on it.
// The caller holds ms.mu.
func (ms *Models) retire(m *Model) {
	ms.retired = append(ms.retired, m)
	after := ms.load.RetireAfter
	if after <= 0 {
		after = DefaultRetireAfter
	}
	ms.timers = append(ms.timers, time.AfterFunc(after, func() {
		for m.inflight.Load() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		m.close()
	}))
}

// Get returns the model named name.
func (ms *Models) Get(name string) (*Model, bool) {
	if ms == nil {
		return nil, false
	}
	m, ok := (*ms.byName.Load())[name]
	return m, ok
}

// List returns the models by name.
func (ms *Models) List() []*Model {
	if ms == nil {
		return nil
	}
	byName := *ms.byName.Load()
	out := make([]*Model, 0, len(byName))
	for _, m := range byName {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops the batchers and closes the scorers, those replaced by Reload
// included (without waiting for their retirement delay).
func (ms *Models) Close() error {
	if ms == nil {
		return nil
	}
	ms.mu.Lock()
	ms.closed = true
	for _, t := range ms.timers {
		t.Stop()
	}
	var errs []error
	for _, m := range *ms.byName.Load() {
		errs = append(errs, m.close())
	}
	for _, m := range ms.retired {
		errs = append(errs, m.close())
	}
	ms.mu.Unlock()
	return errors.Join(errs...)
}

// Watch reloads a model whenever its file in the folder of LoadModels changes
// (size or modification time, polled every period; a new NAME.safetensors file
// is loaded too), until ctx ends. A file that fails to load is logged and the old
// version keeps serving; it is tried again when it changes again. Writers should
// replace a file atomically (scorer.Model.Save does), so that a poll never reads
// half a file.
func (ms *Models) Watch(ctx context.Context, period time.Duration, logger *slog.Logger) {
	if ms == nil || ms.dir == "" || period <= 0 {
		return
	}
	tried := map[string]fileStamp{} // files that failed to load, as they were then
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		entries, err := os.ReadDir(ms.dir)
		if err != nil {
			logger.Warn("model watch", "dir", ms.dir, "err", err)
			continue
		}
		loaded := map[string]*Model{}
		for _, m := range ms.List() {
			loaded[filepath.Base(m.Path)] = m
		}
		for _, e := range entries {
			file := e.Name()
			if e.IsDir() || !strings.HasSuffix(file, ".safetensors") {
				continue
			}
			st := stampOf(filepath.Join(ms.dir, file))
			name := strings.TrimSuffix(file, ".safetensors")
			if m := loaded[file]; m != nil {
				if m.stamp == st {
					continue
				}
				name = m.Name // its metadata name may differ from the file's
			}
			if tried[file] == st {
				continue
			}
			m, old, err := ms.Reload(ctx, ReloadRequest{Name: name, Actor: "system", Trigger: TriggerWatch})
			if err != nil {
				tried[file] = st
				logger.Warn("model reload refused: the old version keeps serving", "file", file, "err", err)
				continue
			}
			delete(tried, file)
			prev := ""
			if old != nil {
				prev = old.Version()
			}
			logger.Info("model reloaded", "name", m.Name, "version", m.Version(), "previous", prev, "backend", m.Scorer.Name())
		}
	}
}

// fileStamp is what Watch compares to see that a file changed.
type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.Size(), fi.ModTime()}
}
