package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis/synth"
	"github.com/liftlab/lift/experiment"
)

const geoPowerDescription = `Market selection and power for a planned geo experiment, by simulation over
the panel's own history (GeoLift's GeoLiftMarketSelection): for each candidate
set of --sizes test markets and each --durations test length D, a test is
simulated on the last D periods (and, with --lookback K, on the K windows
ending 0…K−1 periods before the end), a lift is planted by multiplying the
set's outcomes in the window by 1 + lift, and the conformal test of no effect
is run at --alpha on the synthetic control of the set's average from the other
markets. The power at a lift is the share of windows that detect it; the
minimum detectable effect (MDE) is the smallest of --effects whose power
reaches --power. Candidates (--candidates per size, drawn at random with
--seed, always holding --include and never --exclude) are ranked by MDE, then
by their pre-period fit (RMSPE over the mean).`

type geoPowerFlags struct {
	data, unit, time, outcome, sizes, durations, effects, include, exclude, method, format string
	candidates, lookback, top                                                              int
	alpha, power                                                                           float64
	seed                                                                                   uint64
	intercept                                                                              bool
}

// geoPowerOutput is what "lift geo power" prints.
type geoPowerOutput struct {
	NUnits     int               `json:"n_units"`
	NPeriods   int               `json:"n_periods"`
	Alpha      float64           `json:"alpha"`
	Power      float64           `json:"power"`
	Seed       uint64            `json:"seed"`
	NEvaluated int               `json:"n_evaluated"`
	Candidates []synth.Candidate `json:"candidates" doc:"the best --top, ranked"`
}

func runGeoPower(ctx context.Context, e *env, args []string) error {
	var f geoPowerFlags
	fs := e.flags("geo power", "--data FILE --unit COL --time COL --outcome COL --sizes N,… --durations D,… [flags]", geoPowerDescription)
	fs.StringVar(&f.data, "data", "", "CSV file, one row per market and period, before any test (required)")
	fs.StringVar(&f.unit, "unit", "", "column identifying the market (required)")
	fs.StringVar(&f.time, "time", "", "column with the period (required)")
	fs.StringVar(&f.outcome, "outcome", "", "column with the outcome (required)")
	fs.StringVar(&f.sizes, "sizes", "", "comma-separated numbers of test markets (required)")
	fs.StringVar(&f.durations, "durations", "", "comma-separated test lengths in periods (required)")
	fs.StringVar(&f.effects, "effects", "", "comma-separated relative lifts to simulate, ascending (default 0.01,0.02,…,0.30)")
	fs.StringVar(&f.include, "include", "", "comma-separated markets every candidate must hold")
	fs.StringVar(&f.exclude, "exclude", "", "comma-separated markets no candidate may hold")
	fs.IntVar(&f.candidates, "candidates", 20, "candidate sets drawn per size")
	fs.IntVar(&f.lookback, "lookback", 1, "simulated tests per candidate, ending 0…lookback−1 periods before the end")
	fs.IntVar(&f.top, "top", 10, "candidates to print")
	fs.Float64Var(&f.alpha, "alpha", 0.1, "level of the test")
	fs.Float64Var(&f.power, "power", 0.8, "target power")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the candidate draws")
	fs.StringVar(&f.method, "method", "scm", "scm or augmented")
	fs.BoolVar(&f.intercept, "intercept", false, "remove each market's pre-period mean before weighting")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	out, err := geoPowerFile(ctx, f)
	if err != nil {
		return err
	}
	if f.format == "text" {
		return writeGeoPowerText(e.stdout, out)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func parseInts(flag, s string, min int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || v < min {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field(flag), experiment.Errorf("%q is not an integer ≥ %d", part, min))
		}
		out = append(out, v)
	}
	return out, nil
}

func geoPowerFile(ctx context.Context, f geoPowerFlags) (*geoPowerOutput, error) {
	for _, req := range []struct{ flag, v string }{
		{"--data", f.data}, {"--unit", f.unit}, {"--time", f.time}, {"--outcome", f.outcome}, {"--sizes", f.sizes}, {"--durations", f.durations},
	} {
		if strings.TrimSpace(req.v) == "" {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field(req.flag), experiment.Errorf("is required"))
		}
	}
	if f.format != "json" && f.format != "text" {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--format"), experiment.Errorf("must be json or text, got %q", f.format))
	}
	for _, c := range []struct {
		flag string
		v    float64
	}{{"--alpha", f.alpha}, {"--power", f.power}} {
		if !(c.v > 0 && c.v < 1) {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field(c.flag), experiment.Errorf("must be in (0, 1), got %g", c.v))
		}
	}
	for _, c := range []struct {
		flag string
		v    int
	}{{"--candidates", f.candidates}, {"--lookback", f.lookback}, {"--top", f.top}} {
		if c.v < 1 {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field(c.flag), experiment.Errorf("must be at least 1, got %d", c.v))
		}
	}
	method := synth.Method(f.method)
	if method != synth.SCM && method != synth.Augmented {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--method"), experiment.Errorf("must be scm or augmented, got %q", f.method))
	}
	sizes, err := parseInts("--sizes", f.sizes, 1)
	if err != nil {
		return nil, err
	}
	durations, err := parseInts("--durations", f.durations, 1)
	if err != nil {
		return nil, err
	}
	var effects []float64
	if f.effects != "" {
		for _, part := range strings.Split(f.effects, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
			if err != nil || !(v >= 0) || (len(effects) > 0 && v <= effects[len(effects)-1]) {
				return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--effects"), experiment.Errorf("%q: want non-negative numbers in ascending order", part))
			}
			effects = append(effects, v)
		}
	}
	t, err := readTableFile(ctx, geoOp, f.data)
	if err != nil {
		return nil, err
	}
	if t.rows() == 0 {
		return nil, experiment.E(geoOp, experiment.InsufficientData, experiment.Field("--data"), experiment.Errorf("%s has no data rows", f.data))
	}
	units, err := t.strings(geoOp, "--unit", f.unit)
	if err != nil {
		return nil, err
	}
	times, err := t.strings(geoOp, "--time", f.time)
	if err != nil {
		return nil, err
	}
	y, err := t.floats(geoOp, "--outcome", f.outcome)
	if err != nil {
		return nil, err
	}
	p, err := geoPanel(t, units, times, y)
	if err != nil {
		return nil, err
	}
	markets := func(flag, s string) ([]int, error) {
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		out, _, err := synth.UnitIndexes(p, strings.Split(s, ","))
		if err != nil {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field(flag), experiment.Errorf("%v (column %q)", err, f.unit))
		}
		return out, nil
	}
	include, err := markets("--include", f.include)
	if err != nil {
		return nil, err
	}
	exclude, err := markets("--exclude", f.exclude)
	if err != nil {
		return nil, err
	}
	for _, i := range include {
		if slices.Contains(exclude, i) {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--exclude"), experiment.Errorf("%q is also in --include", p.Units[i]))
		}
	}
	cands, err := synth.MarketSelection(p, synth.PowerOptions{Sizes: sizes, Durations: durations, Effects: effects,
		Candidates: f.candidates, Include: include, Exclude: exclude, Lookback: f.lookback, Alpha: f.alpha, Power: f.power,
		Method: method, Intercept: f.intercept, Rand: rand.New(rand.NewPCG(f.seed, 0x9e3779b97f4a7c15))})
	if err != nil {
		if errors.Is(err, synth.ErrInsufficient) {
			return nil, experiment.E(geoOp, experiment.InsufficientData, experiment.Field("--sizes"), err)
		}
		return nil, pipelineError(ctx, geoOp, err)
	}
	out := &geoPowerOutput{NUnits: len(p.Units), NPeriods: len(p.Periods), Alpha: f.alpha, Power: f.power, Seed: f.seed, NEvaluated: len(cands)}
	out.Candidates = cands[:min(f.top, len(cands))]
	return out, nil
}

func writeGeoPowerText(w io.Writer, o *geoPowerOutput) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Market selection: %d markets × %d periods, %d candidates evaluated, test level %g, target power %g (seed %d)\n\n",
		o.NUnits, o.NPeriods, o.NEvaluated, o.Alpha, o.Power, o.Seed)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "rank\tmarkets\tduration\tMDE\tscaled pre RMSPE")
	for _, c := range o.Candidates {
		mde := "not reached"
		if c.MDE != nil {
			mde = fmt.Sprintf("%.1f%%", 100**c.MDE)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%.4f\n", c.Rank, strings.Join(c.Markets, ", "), c.Duration, mde, c.ScaledRMSPE)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
