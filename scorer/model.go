package scorer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Tensor names and metadata keys of a Lift model file. See docs/scorer.md for the
// PyTorch export that produces them in one call.
const (
	TensorItems = "item_embeddings" // [n_items, d] item factors y_i (required)
	TensorUsers = "user_embeddings" // [n_users, d] user factors x_u (optional)
	TensorBias  = "item_bias"       // [n_items] additive item bias b_i (optional)

	MetaFormat       = "format"        // "lift.embeddings.v1"
	MetaName         = "name"          // model name
	MetaVersion      = "version"       // model version
	MetaTrainingData = "training_data" // free text: what the model was trained on
	MetaCreated      = "created"       // RFC 3339 time
	MetaMetrics      = "metrics"       // JSON object of numbers, e.g. {"recall@10": 0.31}
	MetaItemIDs      = "item_ids"      // JSON array of strings, row i of item_embeddings
	MetaUserIDs      = "user_ids"      // JSON array of strings, row u of user_embeddings
	MetaLambda       = "lambda"        // ALS regularization λ used by fold-in (decimal)
	MetaAlpha        = "alpha"         // ALS confidence scale α used by fold-in (decimal)
	// MetaItemCategories is optional: a JSON object {"item id": "category"}; journeys
	// leave out the items of a category a unit opted out of.
	MetaItemCategories = "item_categories"
	// MetaNotDeployable is optional: when present and non-empty, the model failed
	// a training gate (the value says which and why) and serving refuses it unless
	// forced.
	MetaNotDeployable = "not_deployable"

	// FormatV1 is the value of the "format" metadata key written by this package.
	FormatV1 = "lift.embeddings.v1"
)

// Fold-in defaults for models whose metadata does not carry λ and α (e.g. a model
// exported from PyTorch). α = 40 is the value Hu, Koren & Volinsky (2008) found best.
const (
	DefaultLambda = 0.1
	DefaultAlpha  = 40.0
)

// Metadata describes a model: what it is and how it was made.
type Metadata struct {
	Name         string
	Version      string
	TrainingData string
	Created      time.Time
	Metrics      map[string]float64
	Lambda       float64 // ALS λ; 0 means DefaultLambda
	Alpha        float64 // ALS α; 0 means DefaultAlpha
	// Extra holds other __metadata__ keys, kept on load and written back on save.
	Extra map[string]string
}

// Model is an embedding model: a score is s(u, i) = q_u·y_i + b_i. Items and Users
// are row-major float32 matrices of Dim columns. A Model must not be modified once
// it has been used for scoring or fold-in.
type Model struct {
	Meta    Metadata
	Dim     int
	ItemIDs []string
	Items   []float32 // len(ItemIDs)·Dim
	Bias    []float32 // nil or len(ItemIDs)
	UserIDs []string
	Users   []float32 // len(UserIDs)·Dim

	indexOnce sync.Once
	itemIndex map[string]int32
	userIndex map[string]int32

	gramOnce sync.Once
	gram     []float64 // YᵀY, Dim×Dim

	catOnce    sync.Once
	categories map[string][]int32 // category -> its items' rows, from MetaItemCategories
	itemCat    []string           // row -> category ("" when none)
}

// NItems returns the catalog size.
func (m *Model) NItems() int { return len(m.ItemIDs) }

// NUsers returns the number of users with a trained vector.
func (m *Model) NUsers() int { return len(m.UserIDs) }

// Item returns row i of the item matrix (aliased, not copied).
func (m *Model) Item(i int) []float32 { return m.Items[i*m.Dim : (i+1)*m.Dim : (i+1)*m.Dim] }

// User returns row u of the user matrix (aliased, not copied).
func (m *Model) User(u int) []float32 { return m.Users[u*m.Dim : (u+1)*m.Dim : (u+1)*m.Dim] }

// Validate checks shapes, id lists and values: a clear error naming the tensor or
// metadata key at fault, of kind experiment.Invalid.
func (m *Model) Validate() error {
	const op = "scorer.Model.Validate"
	bad := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	if m.Dim <= 0 {
		return bad(TensorItems, "dimension must be positive, got %d", m.Dim)
	}
	if len(m.ItemIDs) == 0 {
		return bad(MetaItemIDs, "the model has no items")
	}
	if len(m.Items) != len(m.ItemIDs)*m.Dim {
		return bad(TensorItems, "has %d values, want n_items·d = %d·%d", len(m.Items), len(m.ItemIDs), m.Dim)
	}
	if len(m.Users) != len(m.UserIDs)*m.Dim {
		return bad(TensorUsers, "has %d values, want n_users·d = %d·%d", len(m.Users), len(m.UserIDs), m.Dim)
	}
	if m.Bias != nil && len(m.Bias) != len(m.ItemIDs) {
		return bad(TensorBias, "has %d values, want n_items = %d", len(m.Bias), len(m.ItemIDs))
	}
	if len(m.ItemIDs) > math.MaxInt32 || len(m.UserIDs) > math.MaxInt32 {
		return bad(MetaItemIDs, "more than 2³¹−1 rows")
	}
	for _, c := range []struct {
		key string
		ids []string
	}{{MetaItemIDs, m.ItemIDs}, {MetaUserIDs, m.UserIDs}} {
		seen := make(map[string]int, len(c.ids))
		for i, id := range c.ids {
			if id == "" {
				return bad(fmt.Sprintf("%s[%d]", c.key, i), "empty id")
			}
			if j, dup := seen[id]; dup {
				return bad(fmt.Sprintf("%s[%d]", c.key, i), "duplicate id %q (also at %d)", id, j)
			}
			seen[id] = i
		}
	}
	for _, c := range []struct {
		name string
		v    []float32
	}{{TensorItems, m.Items}, {TensorUsers, m.Users}, {TensorBias, m.Bias}} {
		for i, x := range c.v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return bad(c.name, "non-finite value %v at flat index %d", x, i)
			}
		}
	}
	if m.Meta.Lambda < 0 || m.Meta.Alpha < 0 {
		return bad(MetaLambda, "lambda and alpha must be non-negative, got %g and %g", m.Meta.Lambda, m.Meta.Alpha)
	}
	if v, ok := m.Meta.Extra[MetaItemCategories]; ok {
		var cats map[string]string
		if err := json.Unmarshal([]byte(v), &cats); err != nil {
			return bad(MetaItemCategories, "must be a JSON object of item id to category: %v", err)
		}
	}
	return nil
}

func (m *Model) buildCategories() {
	m.catOnce.Do(func() {
		m.categories, m.itemCat = map[string][]int32{}, make([]string, len(m.ItemIDs))
		var cats map[string]string
		if json.Unmarshal([]byte(m.Meta.Extra[MetaItemCategories]), &cats) != nil {
			return // no categories (Validate rejects a malformed value)
		}
		for i, id := range m.ItemIDs {
			if c := cats[id]; c != "" {
				m.categories[c] = append(m.categories[c], int32(i))
				m.itemCat[i] = c
			}
		}
	})
}

// NotDeployable returns why the model failed a training gate ("" when it did not:
// a model without the MetaNotDeployable key, e.g. one exported from PyTorch, is
// deployable).
func (m *Model) NotDeployable() string { return m.Meta.Extra[MetaNotDeployable] }

// ItemsIn returns the rows of the items of category c (nil when none), from
// the model's MetaItemCategories; the slice is shared, not copied.
func (m *Model) ItemsIn(c string) []int32 {
	m.buildCategories()
	return m.categories[c]
}

// CategoryOf returns the category of item id ("" when it has none or is unknown).
func (m *Model) CategoryOf(id string) string {
	i, ok := m.ItemIndex(id)
	if !ok {
		return ""
	}
	m.buildCategories()
	return m.itemCat[i]
}

func (m *Model) buildIndex() {
	m.indexOnce.Do(func() {
		m.itemIndex = make(map[string]int32, len(m.ItemIDs))
		for i, id := range m.ItemIDs {
			m.itemIndex[id] = int32(i)
		}
		m.userIndex = make(map[string]int32, len(m.UserIDs))
		for i, id := range m.UserIDs {
			m.userIndex[id] = int32(i)
		}
	})
}

// ItemIndex returns the row of item id.
func (m *Model) ItemIndex(id string) (int32, bool) {
	m.buildIndex()
	i, ok := m.itemIndex[id]
	return i, ok
}

// UserIndex returns the row of user id.
func (m *Model) UserIndex(id string) (int32, bool) {
	m.buildIndex()
	i, ok := m.userIndex[id]
	return i, ok
}

// lambda and alpha return the fold-in hyper-parameters with defaults applied.
func (m *Model) lambda() float64 {
	if m.Meta.Lambda > 0 {
		return m.Meta.Lambda
	}
	return DefaultLambda
}

func (m *Model) alpha() float64 {
	if m.Meta.Alpha > 0 {
		return m.Meta.Alpha
	}
	return DefaultAlpha
}

// Decode parses a safetensors model from b and validates it.
func Decode(b []byte) (*Model, error) {
	const op = "scorer.Decode"
	f, err := parseSafetensors(b)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, err)
	}
	bad := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	m := &Model{}
	items, ok := f.tensors[TensorItems]
	if !ok {
		return nil, bad(TensorItems, "missing tensor (want [n_items, d] F32)")
	}
	if len(items.Shape) != 2 || items.Shape[0] == 0 || items.Shape[1] == 0 {
		return nil, bad(TensorItems, "shape %v, want [n_items, d] with both > 0", items.Shape)
	}
	m.Dim = int(items.Shape[1])
	m.Items = f.float32s(TensorItems)
	if _, ok := f.meta[MetaItemIDs]; !ok {
		return nil, bad(MetaItemIDs, "missing from __metadata__ (want a JSON array of %d item id strings)", items.Shape[0])
	}
	if err := json.Unmarshal([]byte(f.meta[MetaItemIDs]), &m.ItemIDs); err != nil {
		return nil, bad(MetaItemIDs, "metadata must be a JSON array of strings: %v", err)
	}
	if int64(len(m.ItemIDs)) != items.Shape[0] {
		return nil, bad(MetaItemIDs, "has %d ids for %d rows of %s", len(m.ItemIDs), items.Shape[0], TensorItems)
	}
	if users, ok := f.tensors[TensorUsers]; ok {
		if len(users.Shape) != 2 || users.Shape[1] != items.Shape[1] {
			return nil, bad(TensorUsers, "shape %v, want [n_users, %d]", users.Shape, m.Dim)
		}
		m.Users = f.float32s(TensorUsers)
		if err := json.Unmarshal([]byte(f.meta[MetaUserIDs]), &m.UserIDs); err != nil {
			return nil, bad(MetaUserIDs, "metadata must be a JSON array of strings when %s is present: %v", TensorUsers, err)
		}
		if int64(len(m.UserIDs)) != users.Shape[0] {
			return nil, bad(MetaUserIDs, "has %d ids for %d rows of %s", len(m.UserIDs), users.Shape[0], TensorUsers)
		}
	} else if f.meta[MetaUserIDs] != "" && f.meta[MetaUserIDs] != "[]" {
		return nil, bad(MetaUserIDs, "user ids given without a %s tensor", TensorUsers)
	}
	if bias, ok := f.tensors[TensorBias]; ok {
		if len(bias.Shape) != 1 || bias.Shape[0] != items.Shape[0] {
			return nil, bad(TensorBias, "shape %v, want [%d]", bias.Shape, items.Shape[0])
		}
		m.Bias = f.float32s(TensorBias)
	}
	for name := range f.tensors {
		if name != TensorItems && name != TensorUsers && name != TensorBias {
			return nil, bad(name, "unknown tensor (want %s, %s, %s)", TensorItems, TensorUsers, TensorBias)
		}
	}
	if err := m.Meta.decode(f.meta); err != nil {
		return nil, experiment.E(op, experiment.Invalid, err)
	}
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	return m, nil
}

func (md *Metadata) decode(meta map[string]string) error {
	var err error
	for k, v := range meta {
		switch k {
		case MetaFormat, MetaItemIDs, MetaUserIDs:
		case MetaName:
			md.Name = v
		case MetaVersion:
			md.Version = v
		case MetaTrainingData:
			md.TrainingData = v
		case MetaCreated:
			if v != "" {
				if md.Created, err = time.Parse(time.RFC3339, v); err != nil {
					return experiment.E(experiment.Field(MetaCreated), experiment.Errorf("want an RFC 3339 time: %v", err))
				}
			}
		case MetaMetrics:
			if v != "" {
				if err := json.Unmarshal([]byte(v), &md.Metrics); err != nil {
					return experiment.E(experiment.Field(MetaMetrics), experiment.Errorf("want a JSON object of numbers: %v", err))
				}
			}
		case MetaLambda, MetaAlpha:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
				return experiment.E(experiment.Field(k), experiment.Errorf("want a non-negative decimal, got %q", v))
			}
			if k == MetaLambda {
				md.Lambda = x
			} else {
				md.Alpha = x
			}
		default:
			if md.Extra == nil {
				md.Extra = make(map[string]string)
			}
			md.Extra[k] = v
		}
	}
	return nil
}

func (md *Metadata) encode() (map[string]string, error) {
	out := make(map[string]string, len(md.Extra)+10)
	for k, v := range md.Extra {
		out[k] = v
	}
	out[MetaFormat] = FormatV1
	out[MetaName] = md.Name
	out[MetaVersion] = md.Version
	out[MetaTrainingData] = md.TrainingData
	if !md.Created.IsZero() {
		out[MetaCreated] = md.Created.UTC().Format(time.RFC3339)
	}
	if md.Metrics != nil {
		js, err := json.Marshal(md.Metrics)
		if err != nil {
			return nil, experiment.E(experiment.Field(MetaMetrics), err)
		}
		out[MetaMetrics] = string(js)
	}
	if md.Lambda > 0 {
		out[MetaLambda] = strconv.FormatFloat(md.Lambda, 'g', -1, 64)
	}
	if md.Alpha > 0 {
		out[MetaAlpha] = strconv.FormatFloat(md.Alpha, 'g', -1, 64)
	}
	return out, nil
}

// Encode writes m to w in the safetensors format.
func (m *Model) Encode(w io.Writer) error {
	const op = "scorer.Model.Encode"
	if err := m.Validate(); err != nil {
		return experiment.E(op, err)
	}
	meta, err := m.Meta.encode()
	if err != nil {
		return experiment.E(op, experiment.Invalid, err)
	}
	ids, _ := json.Marshal(m.ItemIDs)
	meta[MetaItemIDs] = string(ids)
	tensors := []namedTensor{}
	if m.Bias != nil {
		tensors = append(tensors, namedTensor{TensorBias, []int64{int64(len(m.ItemIDs))}, m.Bias})
	}
	tensors = append(tensors, namedTensor{TensorItems, []int64{int64(len(m.ItemIDs)), int64(m.Dim)}, m.Items})
	if len(m.UserIDs) > 0 {
		ids, _ := json.Marshal(m.UserIDs)
		meta[MetaUserIDs] = string(ids)
		tensors = append(tensors, namedTensor{TensorUsers, []int64{int64(len(m.UserIDs)), int64(m.Dim)}, m.Users})
	}
	if err := writeSafetensors(w, meta, tensors); err != nil {
		return experiment.E(op, experiment.Internal, err)
	}
	return nil
}

// Load reads and validates the safetensors model at path.
func Load(ctx context.Context, path string) (*Model, error) {
	const op = "scorer.Load"
	if err := ctx.Err(); err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		kind := experiment.Internal
		if os.IsNotExist(err) {
			kind = experiment.NotFound
		}
		return nil, experiment.E(op, kind, err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, experiment.E(op, experiment.Field(path), err)
	}
	return m, nil
}

// Save writes m to path atomically: a temporary file in the same folder, renamed
// into place once complete, so a reader never sees half a model.
func (m *Model) Save(ctx context.Context, path string) error {
	const op = "scorer.Model.Save"
	if err := ctx.Err(); err != nil {
		return experiment.E(op, experiment.Unavailable, err)
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		return experiment.E(op, err)
	}
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		return experiment.E(op, experiment.Internal, err)
	}
	return nil
}

// sortedCopy returns the exclusion list sorted ascending, for binary search.
func sortedCopy(xs []int32) []int32 {
	if len(xs) == 0 {
		return nil
	}
	c := append([]int32(nil), xs...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}
