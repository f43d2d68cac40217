package scorer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// v2Server is an Open Inference Protocol server for model m: it answers
// /v2/models/NAME/ready and /infer, computing scores by brute force. mode "topk"
// returns items and scores [B, top_k] (items as INT64, scores nested per row);
// mode "full" returns only scores [B, n]. Request bodies are checked against the
// protocol.
func v2Server(t *testing.T, m *Model, name, mode string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/models/"+name+"/ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /v2/models/"+name+"/infer", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Parameters struct {
				TopK int `json:"top_k"`
			} `json:"parameters"`
			Inputs []struct {
				Name     string    `json:"name"`
				Shape    []int     `json:"shape"`
				DataType string    `json:"datatype"`
				Data     []float32 `json:"data"`
			} `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 {
			http.Error(w, `{"error": "bad request"}`, http.StatusBadRequest)
			return
		}
		in := req.Inputs[0]
		if in.Name != "query" || in.DataType != "FP32" || len(in.Shape) != 2 || in.Shape[1] != m.Dim || len(in.Data) != in.Shape[0]*in.Shape[1] {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "unexpected input tensor"})
			return
		}
		b := in.Shape[0]
		var outputs []map[string]any
		switch mode {
		case "topk":
			items := make([][]int64, b)
			scores := make([][]float32, b)
			for u := range b {
				for _, s := range naiveTopK(m, in.Data[u*m.Dim:(u+1)*m.Dim], req.Parameters.TopK, nil) {
					items[u] = append(items[u], int64(s.Item))
					scores[u] = append(scores[u], s.Score)
				}
			}
			outputs = []map[string]any{
				{"name": "items", "shape": []int{b, req.Parameters.TopK}, "datatype": "INT64", "data": items},
				{"name": "scores", "shape": []int{b, req.Parameters.TopK}, "datatype": "FP32", "data": scores},
			}
		case "full":
			var scores []float32
			for u := range b {
				for i := range m.NItems() {
					s := dotLanes(in.Data[u*m.Dim:(u+1)*m.Dim], m.Item(i))
					if m.Bias != nil {
						s += m.Bias[i]
					}
					scores = append(scores, s)
				}
			}
			outputs = []map[string]any{{"name": "scores", "shape": []int{b, m.NItems()}, "datatype": "FP32", "data": scores}}
		case "bad-index":
			outputs = []map[string]any{
				{"name": "items", "shape": []int{b, 1}, "datatype": "INT32", "data": make([]int, b)},
				{"name": "scores", "shape": []int{b, 1}, "datatype": "FP32", "data": make([]float32, b)},
			}
			outputs[0]["data"] = slicesRepeat(m.NItems()+5, b)
		}
		json.NewEncoder(w).Encode(map[string]any{"model_name": name, "outputs": outputs})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func slicesRepeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestRemoteMatchesNaive(t *testing.T) {
	m := randomModel(t, 300, 6, 5, 4, true, 13)
	for _, mode := range []string{"topk", "full"} {
		t.Run(mode, func(t *testing.T) {
			srv := v2Server(t, m, "shop", mode)
			s, err := Open(context.Background(), KindRemote, m, Options{URL: srv.URL, RemoteModel: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			queries := [][]float32{m.User(0), m.User(1), m.User(2)}
			exclude := [][]int32{nil, {5, 9, 5}, {0}}
			got, err := s.Score(context.Background(), queries, 7, exclude)
			if err != nil {
				t.Fatal(err)
			}
			for u := range queries {
				if want := naiveTopK(m, queries[u], 7, exclude[u]); !slices.Equal(got[u], want) {
					t.Errorf("user %d: got %v, want %v", u, got[u], want)
				}
			}
		})
	}
}

func TestRemoteErrors(t *testing.T) {
	m := randomModel(t, 20, 3, 1, 0, false, 1)
	ctx := context.Background()
	srv := v2Server(t, m, "shop", "bad-index")
	if _, err := Open(ctx, KindRemote, m, Options{URL: srv.URL, RemoteModel: "other"}); !experiment.Is(err, experiment.Unavailable) {
		t.Errorf("model not ready: err = %v, want unavailable", err)
	}
	if _, err := Open(ctx, KindRemote, m, Options{URL: "ftp://x", RemoteModel: "shop"}); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("bad URL: err = %v, want invalid", err)
	}
	s, err := NewRemote(ctx, m, Options{URL: srv.URL, RemoteModel: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Score(ctx, [][]float32{m.User(0)}, 3, nil)
	if !experiment.Is(err, experiment.Unavailable) || !strings.Contains(err.Error(), "not an item index") {
		t.Errorf("out-of-range item: err = %v", err)
	}
	// A server that rejects the request with a protocol error body.
	rej := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ready") {
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"input 'query' has wrong shape"}`))
	}))
	defer rej.Close()
	s, _ = NewRemote(ctx, m, Options{URL: rej.URL, RemoteModel: "shop"})
	_, err = s.Score(ctx, [][]float32{m.User(0)}, 3, nil)
	if !experiment.Is(err, experiment.Invalid) || !strings.Contains(err.Error(), "wrong shape") {
		t.Errorf("rejected: err = %v", err)
	}
}
