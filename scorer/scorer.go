package scorer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Scored is one recommended item: its row in the model's item matrix and its score
// s = q·y_i + b_i.
type Scored struct {
	Item  int32
	Score float32
}

// Scorer ranks the model's items for a batch of query vectors.
//
// Score returns, for each query q_u (len = the model's dimension), the k items of
// highest score q_u·y_i + b_i, best first, ties broken by item index ascending,
// leaving out the items in exclude[u] (exclude may be nil; exclude[u] may name
// the same item twice). Fewer than k items come back when the catalog, less the
// exclusions, is smaller than k. Score is safe for concurrent use.
type Scorer interface {
	Score(ctx context.Context, queries [][]float32, k int, exclude [][]int32) ([][]Scored, error)
	// Name says which backend and device serve the scores, e.g. "cpu (2 workers)".
	Name() string
	// Close releases the backend's resources (GPU memory, connections).
	Close() error
}

// Kinds accepted by Open.
const (
	KindAuto   = "auto"
	KindCPU    = "cpu"
	KindCUDA   = "cuda"
	KindRemote = "remote"
)

// Options configures Open. The zero value of a field means its default.
type Options struct {
	// Workers is the number of goroutines of the cpu backend (default GOMAXPROCS).
	Workers int
	// BlockItems is the number of items per block of the cpu backend (default 2048:
	// 512 KB of a 64-dimensional item matrix, sized to stay in L2 while every query
	// of the batch is scored against it).
	BlockItems int

	// Precision is what the cpu backend scores in: "f32" (default) or "f16"
	// (item vectors rounded to half precision; see CPU).
	Precision string
	// Device is the CUDA device ordinal (default 0).
	Device int
	// CUDALibDirs are folders searched for libcuda, libcublas and libnvrtc before the
	// dynamic loader's default search (LD_LIBRARY_PATH, ld.so.cache) and the usual
	// CUDA install folders.
	CUDALibDirs []string
	// MaxGPUScoreBytes caps the scores matrix the cuda backend keeps on the GPU
	// (batch × n_items × 4 bytes); larger batches are scored in chunks (default 1 GiB).
	MaxGPUScoreBytes int64

	// URL is the base URL of the remote Open Inference Protocol server, e.g.
	// "http://triton:8000".
	URL string
	// RemoteModel is the model name on the remote server (default the model's
	// Meta.Name).
	RemoteModel string
	// HTTPClient is the remote backend's client (default one with Timeout).
	HTTPClient *http.Client
	// Timeout bounds one remote request (default 2 s) when the context has no
	// earlier deadline.
	Timeout time.Duration

	// Logger receives the backend choice of "auto" and why CUDA was passed over
	// (default slog.Default()).
	Logger *slog.Logger
}

// DefaultOptions returns the options with every default filled in.
func DefaultOptions() Options {
	var o Options
	o.fill()
	return o
}

func (o *Options) fill() {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.BlockItems <= 0 {
		o.BlockItems = 2048
	}
	if o.MaxGPUScoreBytes <= 0 {
		o.MaxGPUScoreBytes = 1 << 30
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Open returns a scorer of the given kind over model m:
//
//	cpu     all cores (NewCPU)
//	cuda    the GPU (NewCUDA); an experiment.Unavailable error without CUDA or a device
//	remote  an Open Inference Protocol server at opts.URL (NewRemote)
//	auto    cuda when it opens, else cpu; the choice (and why cuda was passed over)
//	        is logged and Name() reports it
func Open(ctx context.Context, kind string, m *Model, opts Options) (Scorer, error) {
	const op = "scorer.Open"
	opts.fill()
	switch kind {
	case KindCPU:
		c, err := NewCPU(m, opts)
		if err != nil {
			return nil, err
		}
		return c, nil
	case KindCUDA:
		return NewCUDA(ctx, m, opts)
	case KindRemote:
		r, err := NewRemote(ctx, m, opts)
		if err != nil {
			return nil, err
		}
		return r, nil
	case KindAuto, "":
		s, err := NewCUDA(ctx, m, opts)
		if err == nil {
			opts.Logger.Info("scorer: auto chose cuda", "backend", s.Name())
			return s, nil
		}
		if !experiment.Is(err, experiment.Unavailable) {
			return nil, experiment.E(op, err)
		}
		c, cerr := NewCPU(m, opts)
		if cerr != nil {
			return nil, experiment.E(op, cerr)
		}
		opts.Logger.Info("scorer: auto chose cpu", "backend", c.Name(), "cuda", err.Error())
		return c, nil
	}
	return nil, experiment.E(op, experiment.Invalid, experiment.Field("scorer"),
		experiment.Errorf("unknown scorer kind %q (want auto, cpu, cuda or remote)", kind))
}

// ErrClosed is returned by Score after Close.
var ErrClosed = errors.New("scorer: closed")

// checkRequest validates a Score call against a model of dim columns and n items.
func checkRequest(op string, dim, n int, queries [][]float32, k int, exclude [][]int32) error {
	bad := func(field string, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	if k < 1 {
		return bad("k", "must be at least 1, got %d", k)
	}
	if exclude != nil && len(exclude) != len(queries) {
		return bad("exclude", "has %d lists for %d queries", len(exclude), len(queries))
	}
	for u, q := range queries {
		if len(q) != dim {
			return bad(fieldIndex("queries", u), "has %d values, want the model dimension %d", len(q), dim)
		}
	}
	for u, ex := range exclude {
		for j, it := range ex {
			if it < 0 || int(it) >= n {
				return bad(fieldIndex2("exclude", u, j), "item %d out of range [0, %d)", it, n)
			}
		}
	}
	return nil
}

func fieldIndex(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }

func fieldIndex2(name string, i, j int) string {
	return name + "[" + strconv.Itoa(i) + "][" + strconv.Itoa(j) + "]"
}

// better reports whether (sa, ia) ranks before (sb, ib): higher score first, then
// lower item index.
func better(sa float32, ia int32, sb float32, ib int32) bool {
	return sa > sb || (sa == sb && ia < ib)
}

// topK is a bounded min-heap of the best k (score, item) pairs seen; its root is
// the worst of them, so a candidate enters only when it beats the root.
type topK struct {
	k     int
	score []float32
	item  []int32
}

func newTopK(k int) topK {
	return topK{k: k, score: make([]float32, 0, k), item: make([]int32, 0, k)}
}

// full reports whether the heap holds k pairs; then min is the score to beat.
func (h *topK) full() bool { return len(h.score) == h.k }

// push offers (s, i).
func (h *topK) push(s float32, i int32) {
	if len(h.score) < h.k {
		h.score = append(h.score, s)
		h.item = append(h.item, i)
		// sift up: parent must be worse than child
		c := len(h.score) - 1
		for c > 0 {
			p := (c - 1) / 2
			if !better(h.score[p], h.item[p], h.score[c], h.item[c]) {
				break
			}
			h.score[p], h.score[c] = h.score[c], h.score[p]
			h.item[p], h.item[c] = h.item[c], h.item[p]
			c = p
		}
		return
	}
	if !better(s, i, h.score[0], h.item[0]) {
		return
	}
	h.score[0], h.item[0] = s, i
	n := len(h.score)
	p := 0
	for {
		l := 2*p + 1
		if l >= n {
			break
		}
		w := l // the worse child
		if r := l + 1; r < n && better(h.score[l], h.item[l], h.score[r], h.item[r]) {
			w = r
		}
		if !better(h.score[p], h.item[p], h.score[w], h.item[w]) {
			break
		}
		h.score[p], h.score[w] = h.score[w], h.score[p]
		h.item[p], h.item[w] = h.item[w], h.item[p]
		p = w
	}
}

// sorted returns the heap's pairs best first.
func (h *topK) sorted() []Scored {
	out := make([]Scored, len(h.score))
	for j := range out {
		out[j] = Scored{Item: h.item[j], Score: h.score[j]}
	}
	sortScored(out)
	return out
}

// sortScored orders by score descending, then item ascending.
func sortScored(s []Scored) {
	sort.Slice(s, func(a, b int) bool { return better(s[a].Score, s[a].Item, s[b].Score, s[b].Item) })
}
