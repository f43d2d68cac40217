package assign_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	growthbook "github.com/growthbook/growthbook-golang"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/refdata"
)

// The GrowthBook cross-SDK specification (growthbook/growthbook
// packages/sdk-js/test/cases.json, MIT licence), as the growthbook-golang module
// ships it (cases.json at the module root, specVersion below).
// Every case of the sections hash, getBucketRange, chooseVariation, inNamespace
// and getEqualWeights must pass. Of the section run, the cases that use a feature
// Lift does not have are skipped, each for one of these reasons:
var unsupportedContext = map[string]string{
	"enabled":          "global SDK kill switch: Lift switches experiments by status (the API's decision, not the Plan's)",
	"url":              "querystring forcing (?my-test=1): Lift has no client-side overrides",
	"forcedVariations": "forced variations from the context: Lift has no overrides",
	"qaMode":           "QA mode: Lift has no QA mode",
	"features":         "parent feature flags for prerequisites: Lift has no feature flags",
	"savedGroups":      "saved groups for targeting conditions: Lift does not target",
}

var unsupportedExperiment = map[string]string{
	"condition":         "targeting conditions: the caller decides eligibility before asking Lift",
	"parentConditions":  "prerequisite flags: Lift has no feature flags",
	"force":             "forced variations: Lift has no overrides",
	"filters":           "hash filters: Lift expresses exclusion with layers and holdouts instead",
	"ranges":            "explicit bucket ranges: Lift derives ranges from weights and coverage",
	"url":               "URL targeting: Lift does not target",
	"urlPatterns":       "URL targeting: Lift does not target",
	"fallbackAttribute": "sticky bucketing: Lift assignment is stateless",
	"bucketVersion":     "sticky bucketing: Lift assignment is stateless",
	"minBucketVersion":  "sticky bucketing: Lift assignment is stateless",
	"groups":            "legacy groups targeting: Lift does not target",
}

// minRunPassed is the number of run cases the evaluator below passes on spec
// 0.12.0 (67 of 88; the other 21 use a feature listed above). A drop means a
// regression or a spec file that no longer matches.
const minRunPassed = 67

// specVersion is the cases.json specVersion the evaluator below was checked
// against. The file comes with the growthbook-golang module at the version
// go.mod requires; when an upgrade brings a new spec, this test fails until the
// new cases are reviewed (and minRunPassed updated).
const specVersion = "0.12.0"

// loadCases reads cases.json from the growthbook-golang module directory.
func loadCases(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(refdata.GoModuleFile(t, "github.com/growthbook/growthbook-golang", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var v string
	if err := json.Unmarshal(m["specVersion"], &v); err != nil || v != specVersion {
		t.Fatalf("cases.json has specVersion %s, the evaluator was checked against %s: review the new cases", m["specVersion"], specVersion)
	}
	return m
}

// section decodes one section of the spec into a list of cases, each a list of
// raw JSON values.
func section(t *testing.T, cases map[string]json.RawMessage, name string) [][]json.RawMessage {
	t.Helper()
	var out [][]json.RawMessage
	if err := json.Unmarshal(cases[name], &out); err != nil {
		t.Fatalf("section %s: %v", name, err)
	}
	if len(out) == 0 {
		t.Fatalf("section %s is empty", name)
	}
	return out
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

// toRanges reads GrowthBook ranges [start, end].
func toRanges(pairs [][2]float64) []experiment.Range {
	r := make([]experiment.Range, len(pairs))
	for i, p := range pairs {
		r[i] = experiment.Range{Start: p[0], End: p[1]}
	}
	return r
}

func TestGrowthBookHash(t *testing.T) {
	for i, c := range section(t, loadCases(t), "hash") {
		var seed, value string
		var version int
		var want *float64
		decode(t, c[0], &seed)
		decode(t, c[1], &value)
		decode(t, c[2], &version)
		decode(t, c[3], &want)
		got, ok := assign.Hash(seed, value, version)
		switch {
		case want == nil && ok:
			t.Errorf("case %d: Hash(%q, %q, %d) = %v, want no value for an unknown version", i, seed, value, version, got)
		case want != nil && (!ok || got != *want):
			t.Errorf("case %d: Hash(%q, %q, %d) = %v, %v; want %v", i, seed, value, version, got, ok, *want)
		}
	}
}

func TestGrowthBookBucketRanges(t *testing.T) {
	for _, c := range section(t, loadCases(t), "getBucketRange") {
		var name string
		var args []json.RawMessage
		var want [][2]float64
		decode(t, c[0], &name)
		decode(t, c[1], &args)
		decode(t, c[2], &want)
		var n int
		var coverage float64
		var weights []float64
		decode(t, args[0], &n)
		decode(t, args[1], &coverage)
		decode(t, args[2], &weights)
		got := assign.BucketRanges(n, coverage, weights)
		if len(got) != len(want) {
			t.Errorf("%s: got %d ranges, want %d", name, len(got), len(want))
			continue
		}
		// The JS test rounds both ends to 6 decimals (sdk-js test/util.test.ts).
		for i, r := range toRanges(want) {
			if math.Abs(got[i].Start-r.Start) > 1e-6 || math.Abs(got[i].End-r.End) > 1e-6 {
				t.Errorf("%s: range %d = %v, want %v", name, i, got[i], r)
			}
		}
	}
}

func TestGrowthBookChooseVariation(t *testing.T) {
	for _, c := range section(t, loadCases(t), "chooseVariation") {
		var name string
		var n float64
		var ranges [][2]float64
		var want int
		decode(t, c[0], &name)
		decode(t, c[1], &n)
		decode(t, c[2], &ranges)
		decode(t, c[3], &want)
		if got := assign.ChooseVariation(n, toRanges(ranges)); got != want {
			t.Errorf("%s: ChooseVariation = %d, want %d", name, got, want)
		}
	}
}

func TestGrowthBookInNamespace(t *testing.T) {
	for _, c := range section(t, loadCases(t), "inNamespace") {
		var name, unit string
		var ns []json.RawMessage
		var want bool
		decode(t, c[0], &name)
		decode(t, c[1], &unit)
		decode(t, c[2], &ns)
		decode(t, c[3], &want)
		var n assign.Namespace
		decode(t, ns[0], &n.Name)
		decode(t, ns[1], &n.Range.Start)
		decode(t, ns[2], &n.Range.End)
		if got := assign.InNamespace(unit, n); got != want {
			t.Errorf("%s: InNamespace = %v, want %v", name, got, want)
		}
	}
}

func TestGrowthBookEqualWeights(t *testing.T) {
	for _, c := range section(t, loadCases(t), "getEqualWeights") {
		var n int
		var want []float64
		decode(t, c[0], &n)
		decode(t, c[1], &want)
		got := assign.EqualWeights(n)
		if len(got) != len(want) {
			t.Errorf("EqualWeights(%d) has %d weights, want %d", n, len(got), len(want))
			continue
		}
		// The spec lists 1/3 to 8 decimals and the JS test rounds to 8.
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-8 {
				t.Errorf("EqualWeights(%d)[%d] = %v, want %v", n, i, got[i], want[i])
			}
		}
	}
}

// gbRun is a GrowthBook run case: [name, context, experiment, value, inExperiment, hashUsed].
type gbRun struct {
	name     string
	ctx      map[string]json.RawMessage
	exp      map[string]json.RawMessage
	value    json.RawMessage
	inExp    bool
	hashUsed bool
	rawExp   json.RawMessage
}

// skipReason returns why Lift cannot run the case, or "" when it can.
func (c *gbRun) skipReason() string {
	for _, k := range sortedKeys(c.ctx) {
		if k == "attributes" {
			continue
		}
		if why, ok := unsupportedContext[k]; ok {
			return "context." + k + ": " + why
		}
		return "context." + k + ": not mapped"
	}
	for _, k := range sortedKeys(c.exp) {
		switch k {
		case "key", "variations", "weights", "coverage", "hashVersion", "seed", "namespace", "hashAttribute", "active", "name", "phase":
			continue
		}
		if why, ok := unsupportedExperiment[k]; ok {
			return "experiment." + k + ": " + why
		}
		return "experiment." + k + ": not mapped"
	}
	return ""
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// liftResult is what the case evaluator answers, in GrowthBook's terms.
type liftResult struct {
	value    json.RawMessage
	index    int
	inExp    bool
	hashUsed bool
	bucket   float64
}

// runLift maps a GrowthBook experiment onto an experiment.Experiment and a Plan,
// assigns the case's user and answers as a GrowthBook SDK would:
//   - the unit is the hash attribute (default "id"); a missing or null attribute
//     is the empty unit, which AssignChecked rejects → not in the experiment;
//   - GrowthBook's default hash version is 1 (Lift's is 2), its default seed the key;
//   - namespace [name, start, end] becomes layer name with layer_range [start, end);
//   - active: false stands for an experiment that is not running, which the API
//     does not assign (the Plan itself assigns regardless of status);
//   - fewer than two variations: Compile rejects the design, and an SDK serves
//     the first variation outside the experiment.
//
// Outside the experiment the value is the first variation, as in GrowthBook.
func runLift(t *testing.T, c *gbRun) liftResult {
	t.Helper()
	var variations []json.RawMessage
	decode(t, c.exp["variations"], &variations)
	out := liftResult{value: variations[0], index: -1}

	var attrs map[string]any
	if raw, ok := c.ctx["attributes"]; ok {
		decode(t, raw, &attrs)
	}
	attr := "id"
	if raw, ok := c.exp["hashAttribute"]; ok {
		decode(t, raw, &attr)
	}
	// Lift's units are strings; a client turns an SDK attribute into one as the
	// JS SDK's getHashAttribute does: a string as it is, a finite non-zero
	// number as JS String() writes it, and anything else (0, booleans, arrays,
	// objects, null) is missing.
	unit := ""
	switch v := attrs[attr].(type) {
	case string:
		unit = v
	case float64:
		if v != 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			unit = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}

	e := &experiment.Experiment{HashVersion: 1}
	decode(t, c.exp["key"], &e.Key)
	weights := assign.EqualWeights(len(variations))
	if raw, ok := c.exp["weights"]; ok {
		decode(t, raw, &weights)
	}
	for i := range variations {
		e.Variants = append(e.Variants, experiment.Variant{Name: "v" + strconv.Itoa(i), Weight: weights[i]})
	}
	if raw, ok := c.exp["coverage"]; ok {
		var cov float64
		decode(t, raw, &cov)
		e.Coverage = &cov
	}
	if raw, ok := c.exp["hashVersion"]; ok {
		decode(t, raw, &e.HashVersion)
	}
	if raw, ok := c.exp["seed"]; ok {
		decode(t, raw, &e.Seed)
	}
	if raw, ok := c.exp["namespace"]; ok {
		var ns []json.RawMessage
		decode(t, raw, &ns)
		var r experiment.Range
		decode(t, ns[0], &e.Layer)
		decode(t, ns[1], &r.Start)
		decode(t, ns[2], &r.End)
		e.LayerRange = &r
	}
	if raw, ok := c.exp["active"]; ok {
		var active bool
		decode(t, raw, &active)
		if !active {
			return out
		}
	}

	plan, err := assign.Compile(e, nil)
	if err != nil {
		if len(variations) < 2 && experiment.Is(err, experiment.Invalid) {
			return out
		}
		t.Fatalf("%s: Compile: %v", c.name, err)
	}
	a, err := plan.AssignChecked(unit)
	if err != nil {
		if unit == "" && experiment.Is(err, experiment.Invalid) {
			return out
		}
		t.Fatalf("%s: Assign(%q): %v", c.name, unit, err)
	}
	out.bucket = a.Bucket
	if a.InExperiment {
		out.value = variations[a.VariantIndex]
		out.index = a.VariantIndex
		out.inExp, out.hashUsed = true, true
	}
	return out
}

// runGrowthBookGo runs the case through the growthbook-golang SDK, the source of
// the expected bucket (the spec file does not list buckets).
func runGrowthBookGo(t *testing.T, c *gbRun) *growthbook.ExperimentResult {
	t.Helper()
	var attrs growthbook.Attributes
	if raw, ok := c.ctx["attributes"]; ok {
		decode(t, raw, &attrs)
	}
	var exp growthbook.Experiment
	decode(t, c.rawExp, &exp)
	client, err := growthbook.NewClient(context.Background(), growthbook.WithAttributes(attrs))
	if err != nil {
		t.Fatal(err)
	}
	return client.RunExperiment(context.Background(), &exp)
}

func TestGrowthBookRun(t *testing.T) {
	var passed, buckets int
	skipped := map[string][]string{}
	for _, raw := range section(t, loadCases(t), "run") {
		var c gbRun
		decode(t, raw[0], &c.name)
		decode(t, raw[1], &c.ctx)
		decode(t, raw[2], &c.exp)
		c.rawExp, c.value = raw[2], raw[3]
		decode(t, raw[4], &c.inExp)
		decode(t, raw[5], &c.hashUsed)
		if why := c.skipReason(); why != "" {
			skipped[why] = append(skipped[why], c.name)
			continue
		}
		got := runLift(t, &c)
		var gv, wv any
		decode(t, got.value, &gv)
		decode(t, c.value, &wv)
		ok := true
		if !reflect.DeepEqual(gv, wv) || got.inExp != c.inExp || got.hashUsed != c.hashUsed {
			t.Errorf("%s: got value %s inExperiment %v hashUsed %v; want %s %v %v",
				c.name, got.value, got.inExp, got.hashUsed, c.value, c.inExp, c.hashUsed)
			ok = false
		}
		if gb := runGrowthBookGo(t, &c); gb.InExperiment {
			buckets++
			if gb.Bucket == nil || *gb.Bucket != got.bucket || gb.VariationId != got.index {
				t.Errorf("%s: bucket %v variation %d; growthbook-golang says %v %d", c.name, got.bucket, got.index, gb.Bucket, gb.VariationId)
				ok = false
			}
		}
		if ok {
			passed++
		}
	}
	var lines []string
	n := 0
	for why, names := range skipped {
		n += len(names)
		lines = append(lines, why+": "+strings.Join(names, ", "))
	}
	sort.Strings(lines)
	t.Logf("run: %d passed (%d buckets checked against growthbook-golang), %d skipped:\n%s",
		passed, buckets, n, strings.Join(lines, "\n"))
	if buckets == 0 {
		t.Error("no bucket was compared with growthbook-golang")
	}
	if passed < minRunPassed {
		t.Errorf("run: %d cases passed, want at least %d", passed, minRunPassed)
	}
}
