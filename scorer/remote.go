package scorer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// Remote is a client of the Open Inference Protocol (KServe v2, HTTP/JSON; also
// served by Triton) for teams that serve their model elsewhere. One Score call is
// one request:
//
//	POST {URL}/v2/models/{RemoteModel}/infer
//	{"parameters": {"top_k": K},
//	 "inputs":  [{"name": "query", "shape": [B, d], "datatype": "FP32", "data": [...]}],
//	 "outputs": [{"name": "items"}, {"name": "scores"}]}
//
// The model answers either its top K per query (outputs "items", INT32 or INT64,
// and "scores", FP32, both of shape [B, K], item indices into the catalog order of
// the local model file) or every score (output "scores" of shape [B, n_items],
// "items" absent), from which the client selects. K is k plus the largest
// exclusion list, so that k items remain after the client drops excluded ones;
// the client re-sorts by score then item index, so ties break as on the other
// backends. Data may be flat or nested in row-major order.
type Remote struct {
	m      *Model
	infer  string
	client *http.Client
	opts   Options
}

var _ Scorer = (*Remote)(nil)

// NewRemote returns the remote backend; it checks GET {URL}/v2/models/{name}/ready
// and returns an experiment.Unavailable error when the server is not ready.
func NewRemote(ctx context.Context, m *Model, opts Options) (*Remote, error) {
	const op = "scorer.NewRemote"
	opts.fill()
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	base, err := url.Parse(opts.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("url"), experiment.Errorf("want an http(s) base URL, got %q", opts.URL))
	}
	name := opts.RemoteModel
	if name == "" {
		name = m.Meta.Name
	}
	if name == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("remote_model"), experiment.Errorf("no remote model name (and the model file has none)"))
	}
	root := strings.TrimRight(opts.URL, "/") + "/v2/models/" + url.PathEscape(name)
	r := &Remote{m: m, infer: root + "/infer", client: opts.HTTPClient, opts: opts}
	rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, root+"/ready", nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, experiment.E(op, experiment.Unavailable, experiment.Errorf("%s/ready answered %s", root, resp.Status))
	}
	return r, nil
}

// Name implements Scorer.
func (r *Remote) Name() string { return "remote (" + r.infer + ")" }

// Close implements Scorer.
func (r *Remote) Close() error { return nil }

// v2Tensor is a tensor of the Open Inference Protocol.
type v2Tensor struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	DataType string          `json:"datatype"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type v2Request struct {
	Parameters map[string]any      `json:"parameters,omitempty"`
	Inputs     []v2Tensor          `json:"inputs"`
	Outputs    []map[string]string `json:"outputs,omitempty"`
}

type v2Response struct {
	ModelName string     `json:"model_name"`
	Outputs   []v2Tensor `json:"outputs"`
	Error     string     `json:"error"`
}

// Score implements Scorer.
func (r *Remote) Score(ctx context.Context, queries [][]float32, k int, exclude [][]int32) ([][]Scored, error) {
	const op = "scorer.Remote.Score"
	d, n := r.m.Dim, r.m.NItems()
	if err := checkRequest(op, d, n, queries, k, exclude); err != nil {
		return nil, err
	}
	b := len(queries)
	if b == 0 {
		return [][]Scored{}, nil
	}
	k = min(k, n)
	maxEx := 0
	for _, ex := range exclude {
		maxEx = max(maxEx, len(ex))
	}
	kk := min(n, k+maxEx)
	flat := make([]float32, 0, b*d)
	for _, q := range queries {
		flat = append(flat, q...)
	}
	data, _ := json.Marshal(flat)
	body, _ := json.Marshal(v2Request{
		Parameters: map[string]any{"top_k": kk},
		Inputs:     []v2Tensor{{Name: "query", Shape: []int64{int64(b), int64(d)}, DataType: "FP32", Data: data}},
		Outputs:    []map[string]string{{"name": "items"}, {"name": "scores"}},
	})
	rctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, r.infer, bytes.NewReader(body))
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	var out v2Response
	jerr := json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(raw))
		if jerr == nil && out.Error != "" {
			msg = out.Error
		}
		kind := experiment.Unavailable
		if resp.StatusCode == http.StatusBadRequest {
			kind = experiment.Invalid
		}
		return nil, experiment.E(op, kind, experiment.Errorf("%s: %s: %s", r.infer, resp.Status, msg))
	}
	if jerr != nil {
		return nil, experiment.E(op, experiment.Unavailable, experiment.Errorf("%s: response is not JSON: %v", r.infer, jerr))
	}
	res, err := r.parse(out, b, k, kk, exclude)
	if err != nil {
		return nil, experiment.E(op, experiment.Unavailable, experiment.Errorf("%s: %v", r.infer, err))
	}
	return res, nil
}

// parse turns the outputs into top-k lists, checking shapes and indices.
func (r *Remote) parse(out v2Response, b, k, kk int, exclude [][]int32) ([][]Scored, error) {
	n := r.m.NItems()
	var items, scores *v2Tensor
	for i := range out.Outputs {
		switch out.Outputs[i].Name {
		case "items":
			items = &out.Outputs[i]
		case "scores":
			scores = &out.Outputs[i]
		}
	}
	if scores == nil {
		return nil, fmt.Errorf(`no "scores" output`)
	}
	sv, err := flatNumbers(scores.Data)
	if err != nil {
		return nil, fmt.Errorf("output scores: %v", err)
	}
	var iv []float64
	width := kk
	if items == nil {
		width = n // every score
		if len(scores.Shape) != 2 || scores.Shape[0] != int64(b) || scores.Shape[1] != int64(n) {
			return nil, fmt.Errorf("output scores has shape %v; without an items output want [%d, %d]", scores.Shape, b, n)
		}
	} else {
		if iv, err = flatNumbers(items.Data); err != nil {
			return nil, fmt.Errorf("output items: %v", err)
		}
		if len(items.Shape) != 2 || items.Shape[0] != int64(b) || items.Shape[1] < 1 ||
			len(scores.Shape) != 2 || scores.Shape[0] != items.Shape[0] || scores.Shape[1] != items.Shape[1] {
			return nil, fmt.Errorf("outputs items %v and scores %v, want both [%d, K]", items.Shape, scores.Shape, b)
		}
		width = int(items.Shape[1])
		if len(iv) != b*width {
			return nil, fmt.Errorf("output items has %d values for shape %v", len(iv), items.Shape)
		}
	}
	if len(sv) != b*width {
		return nil, fmt.Errorf("output scores has %d values for shape %v", len(sv), scores.Shape)
	}
	res := make([][]Scored, b)
	for u := range b {
		var ex []int32
		if exclude != nil {
			ex = sortedCopy(exclude[u])
		}
		h := newTopK(k)
		for j := range width {
			it := int64(j)
			if iv != nil {
				f := iv[u*width+j]
				if f != float64(int64(f)) || f < 0 || f >= float64(n) {
					return nil, fmt.Errorf("items[%d][%d] = %v is not an item index in [0, %d)", u, j, f, n)
				}
				it = int64(f)
			}
			if len(ex) > 0 && containsSorted(ex, int32(it)) {
				continue
			}
			h.push(float32(sv[u*width+j]), int32(it))
		}
		res[u] = h.sorted()
	}
	return res, nil
}

func containsSorted(xs []int32, v int32) bool {
	lo, hi := 0, len(xs)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case xs[m] == v:
			return true
		case xs[m] < v:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// flatNumbers decodes a flat or nested JSON array of numbers in row-major order.
func flatNumbers(raw json.RawMessage) ([]float64, error) {
	var flat []float64
	if err := json.Unmarshal(raw, &flat); err == nil {
		return flat, nil
	}
	flat = nil // a failed Unmarshal may have filled part of it
	var nested any
	if err := json.Unmarshal(raw, &nested); err != nil {
		return nil, err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case float64:
			flat = append(flat, x)
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("data holds %T, want numbers", v)
		}
		return nil
	}
	if err := walk(nested); err != nil {
		return nil, err
	}
	return flat, nil
}
