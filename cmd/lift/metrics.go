package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

const metricsDescription = `
Define, change and retire metric definitions on a running lift server (the one
writer of the registry), through the API (docs/metrics.md).

Actions:
  define --file FILE     create each metric of FILE, or store its next version
                         when it exists (PUT /v1/metrics/NAME): running
                         experiments keep the versions they pinned. FILE holds
                         one metric object or {"metrics": [...]}. Prints one
                         line a metric: created, version N, or unchanged.
  list                   every metric's current definition (JSON)
  show --name NAME       one metric (--version N: that version) (JSON)
  versions --name NAME   a metric's versions, oldest first (JSON)
  deprecate --name NAME  keep a metric off new experiments and templates
  restore --name NAME    undo a deprecation
  delete --name NAME     delete an unused metric and its versions (a metric
                         in use is refused, naming its users)

Environment: LIFT_API_KEY   the key when --key is not given`

func runMetrics(ctx context.Context, e *env, args []string) error {
	synopsis := "define|list|show|versions|deprecate|restore|delete [--name NAME] [--file FILE] --server URL --key KEY"
	action := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	fs := e.flags("metrics", synopsis, metricsDescription)
	server := fs.String("server", "http://127.0.0.1:8080", "`URL` of the running lift server")
	key := fs.String("key", "", "API key (analyst or admin; delete: admin) for --server; default $LIFT_API_KEY")
	name := fs.String("name", "", "the metric's `name`")
	file := fs.String("file", "", "JSON `file` of metric definitions (define)")
	version := fs.Int("version", 0, "a version of the definition (show); 0: the current one")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	needName := map[string]bool{"show": true, "versions": true, "deprecate": true, "restore": true, "delete": true}
	switch {
	case action == "define" && *file == "":
		return experiment.E("metrics", experiment.Invalid, experiment.Field("file"), experiment.Errorf("--file: define needs a file of metric definitions"))
	case needName[action] && *name == "":
		return experiment.E("metrics", experiment.Invalid, experiment.Field("name"), experiment.Errorf("--name: %s needs the metric's name", action))
	case action != "define" && action != "list" && !needName[action]:
		fmt.Fprintf(e.stderr, "lift metrics: unknown action %q\n", action)
		fs.Usage()
		return errUsage
	}
	k := *key
	if k == "" {
		k = e.lookupEnv("LIFT_API_KEY")
	}
	if k == "" {
		return experiment.E("metrics", experiment.Invalid, experiment.Field("key"), experiment.Errorf("--key: the server needs an API key: give --key or set LIFT_API_KEY"))
	}
	c := &apiClient{base: strings.TrimRight(*server, "/"), key: k, http: &http.Client{Timeout: time.Minute}}
	path := "/v1/metrics/" + url.PathEscape(*name)
	switch action {
	case "define":
		return defineMetrics(ctx, e, c, *file)
	case "list":
		return c.print(ctx, e, http.MethodGet, "/v1/metrics")
	case "show":
		if *version != 0 {
			path += "?version=" + strconv.Itoa(*version)
		}
		return c.print(ctx, e, http.MethodGet, path)
	case "versions":
		return c.print(ctx, e, http.MethodGet, path+"/versions")
	case "deprecate", "restore":
		var m experiment.Metric
		if _, err := c.do(ctx, http.MethodPost, path+"/"+action, nil, &m); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %sd (version %d)\n", m.Name, action, m.Version)
		return nil
	default: // delete
		if _, err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: deleted\n", *name)
		return nil
	}
}

// defineMetrics creates each metric of file or stores its next version.
func defineMetrics(ctx context.Context, e *env, c *apiClient, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("%s: a metric object or {\"metrics\": [...]}: %w", file, err)
	}
	ms := []json.RawMessage{bytes.TrimSpace(b)}
	if list, ok := top["metrics"]; ok && top["name"] == nil {
		if err := json.Unmarshal(list, &ms); err != nil {
			return fmt.Errorf("%s: metrics: %w", file, err)
		}
	}
	for i, raw := range ms {
		var head struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.Name == "" {
			return experiment.E("metrics", experiment.Invalid, experiment.Field(fmt.Sprintf("metrics[%d].name", i)), experiment.Errorf("%s: each metric needs a name", file))
		}
		var m experiment.Metric
		status, err := c.do(ctx, http.MethodPost, "/v1/metrics", raw, &m)
		switch {
		case err == nil:
			fmt.Fprintf(e.stdout, "%s: created (version %d)\n", m.Name, m.Version)
			continue
		case status != http.StatusConflict:
			return fmt.Errorf("metrics[%d] (%s): %w", i, head.Name, err)
		}
		var cur experiment.Metric
		path := "/v1/metrics/" + url.PathEscape(head.Name)
		if _, err := c.do(ctx, http.MethodGet, path, nil, &cur); err != nil {
			return fmt.Errorf("metrics[%d] (%s): %w", i, head.Name, err)
		}
		if _, err := c.do(ctx, http.MethodPut, path, raw, &m); err != nil {
			return fmt.Errorf("metrics[%d] (%s): %w", i, head.Name, err)
		}
		if m.Version == cur.Version {
			fmt.Fprintf(e.stdout, "%s: unchanged (version %d)\n", m.Name, m.Version)
		} else {
			fmt.Fprintf(e.stdout, "%s: version %d\n", m.Name, m.Version)
		}
	}
	return nil
}

// apiClient calls a lift server's API with a key.
type apiClient struct {
	base, key string
	http      *http.Client
}

// do sends body (raw JSON, or nil) and decodes a 2xx answer into out (when
// not nil); another status is an error with the server's message.
func (c *apiClient) do(ctx context.Context, method, path string, body json.RawMessage, out any) (int, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, experiment.E("metrics", experiment.Unavailable, fmt.Errorf("calling %s: %w", c.base, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return resp.StatusCode, fmt.Errorf("server answered %d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return resp.StatusCode, fmt.Errorf("server answered %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("reading the server's answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// print writes the JSON answer of a GET, indented.
func (c *apiClient) print(ctx context.Context, e *env, method, path string) error {
	var v any
	if _, err := c.do(ctx, method, path, nil, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
