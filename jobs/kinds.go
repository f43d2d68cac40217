package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// Deps are what the job kinds work with.
type Deps struct {
	Store *store.DB
	// Results computes the monitors' results; nil: the results service over
	// Store and its DuckDB engine.
	Results *results.Service
	// Webhooks says which hosts monitors may send alerts to (lift serve
	// --webhook-allow); nil allows public addresses only.
	Webhooks *WebhookPolicy
	HTTP     *http.Client     // webhook client, default Webhooks.Client with a 10 s timeout
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // where the details of failed deliveries go, default slog.Default()
	// Digest builds the executive digest of one target for one period (an
	// experiment key, "holdout:NAME" or "journey:KEY"; see DigestParams); it is
	// set by the server, which owns the privacy ledger and the report renderer.
	// Nil leaves the digest kind unavailable.
	Digest func(ctx context.Context, j *experiment.Job, period time.Time, target string) (*experiment.Digest, error)
	// Journeys compares personalized, control and holdout units of each journey;
	// nil leaves the journey_comparison kind unavailable.
	Journeys Func
	// JourneyDays rolls up a journey's decisions per UTC day in [from, to), with
	// each day's item-exposure Gini (journey.Rollup, set by the server); nil
	// leaves the journey_gini_rise kind unavailable.
	JourneyDays func(ctx context.Context, key string, from, to time.Time) ([]store.JourneyDay, error)
	// PrivateGuardrails judges the metrics of an experiment under a privacy budget
	// on its DP release, by the rule its digests use, so that a monitor and a
	// digest never contradict each other (docs/jobs.md); ok is false when the
	// experiment has no budget (or none left), and the monitor then judges on
	// exact results. Nil: the monitor always judges on exact results.
	PrivateGuardrails func(ctx context.Context, j *experiment.Job, key string) (checks []GuardrailCheck, ok bool, err error)
}

// GuardrailCheck is one metric's comparison judged on a DP release.
type GuardrailCheck struct {
	Metric, Variant string
	Status          experiment.GuardrailStatus
	// Estimate, Low and High are the released relative lift and its interval
	// (all zero when the interval was withheld as saying nothing).
	Estimate, Low, High float64
	ReleasedAt          time.Time
}

// Kinds returns the job kinds backed by deps.
func Kinds(d Deps) map[experiment.JobKind]Func {
	d.fill()
	k := map[experiment.JobKind]Func{
		experiment.JobResultsRefresh:   d.refresh,
		experiment.JobMonitor:          d.monitor,
		experiment.JobBanditAllocation: d.banditAllocation,
	}
	if d.Digest != nil {
		k[experiment.JobDigest] = d.digest
	}
	if d.Journeys != nil {
		k[experiment.JobJourneyComparison] = d.Journeys
	}
	if d.JourneyDays != nil {
		k[experiment.JobJourneyGiniRise] = d.giniRise
	}
	return k
}

func (d *Deps) fill() {
	if d.HTTP == nil {
		d.HTTP = d.Webhooks.Client(10 * time.Second)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
}

// Checks returns the creation-time checks of the kinds backed by deps: params
// decoded strictly (no unknown field, the right types, valid values) and the
// target present in the store. Pass them as Options.Checks.
func Checks(d Deps) map[experiment.JobKind]Check {
	d.fill()
	return map[experiment.JobKind]Check{
		experiment.JobResultsRefresh: func(ctx context.Context, j *experiment.Job) error {
			if err := decodeParams(j, &struct{}{}); err != nil {
				return err
			}
			return d.checkExperimentTarget(ctx, j)
		},
		experiment.JobMonitor:         d.checkMonitor,
		experiment.JobJourneyGiniRise: d.checkGiniRise,
		experiment.JobDigest:          d.checkDigest,
		experiment.JobBanditAllocation: func(ctx context.Context, j *experiment.Job) error {
			if err := decodeParams(j, &struct{}{}); err != nil {
				return err
			}
			return d.checkExperimentTarget(ctx, j)
		},
	}
}

// DecodeParams decodes a job's params strictly into v: a JSON object whose
// fields v knows, of the right types; an error names the field ("params.webhook").
func DecodeParams(j *experiment.Job, v any) error { return decodeParams(j, v) }

func decodeParams(j *experiment.Job, v any) error {
	const op = "jobs.params"
	if len(j.Params) == 0 || string(j.Params) == "null" {
		return nil
	}
	bad := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	var fields map[string]json.RawMessage
	if b := bytes.TrimSpace(j.Params); len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &fields) != nil {
		return bad("params", "must be a JSON object")
	}
	// Decode field by field, so that an error (a custom decoder's too) names its field.
	rv := reflect.ValueOf(v).Elem()
	byName := map[string]int{}
	var known []string
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			byName[name] = i
			known = append(known, name)
		}
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		i, ok := byName[k]
		if !ok {
			if len(known) == 0 {
				return bad("params."+k, "unknown field: a %s job takes no params", j.Kind)
			}
			return bad("params."+k, "unknown field for a %s job (it takes %s)", j.Kind, strings.Join(known, ", "))
		}
		if err := json.Unmarshal(fields[k], rv.Field(i).Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if _, msg, ok := experiment.DurationError(err); ok {
				return bad("params."+k, "%s", msg)
			}
			if errors.As(err, &te) {
				return bad("params."+k, "must be %s, got %s", jsonType(te.Type.Kind().String()), te.Value)
			}
			return bad("params."+k, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "float64":
		return "a number"
	}
	return "a " + kind
}

// checkExperimentTarget checks that a job's target, when given, is an experiment.
func (d Deps) checkExperimentTarget(ctx context.Context, j *experiment.Job) error {
	if j.Target == "" {
		return nil
	}
	return targetExists(ctx, "experiment", j.Target, func(ctx context.Context, k string) error {
		_, err := d.Store.GetExperiment(ctx, k)
		return err
	})
}

// targetExists turns a NotFound from get into an Invalid error naming "target".
func targetExists(ctx context.Context, what, key string, get func(context.Context, string) error) error {
	err := get(ctx, key)
	if experiment.Is(err, experiment.NotFound) {
		return experiment.E("jobs.target", experiment.Invalid, experiment.Field("target"), experiment.Errorf("no %s %q: create it first, or leave target out for all", what, key))
	}
	return err
}

func (d Deps) checkMonitor(ctx context.Context, j *experiment.Job) error {
	const op = "jobs.monitor"
	var p MonitorParams
	if err := decodeParams(j, &p); err != nil {
		return err
	}
	if p.Webhook != "" {
		if err := d.Webhooks.CheckURL(p.Webhook); err != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("params.webhook"), err)
		}
	}
	if p.StaleAfter != 0 && time.Duration(p.StaleAfter) < MinInterval {
		return experiment.E(op, experiment.Invalid, experiment.Field("params.stale_after"), experiment.Errorf("must be at least %s, got %s", experiment.Duration(MinInterval), p.StaleAfter))
	}
	if p.SRMConcentration < 0 || math.IsInf(p.SRMConcentration, 0) {
		return experiment.E(op, experiment.Invalid, experiment.Field("params.srm_concentration"), experiment.Errorf("must be a positive number, got %g", p.SRMConcentration))
	}
	return d.checkExperimentTarget(ctx, j)
}

func (d Deps) checkDigest(ctx context.Context, j *experiment.Job) error {
	var p DigestParams
	if err := decodeParams(j, &p); err != nil {
		return err
	}
	switch p.Subject {
	case "", SubjectExperiment:
		return d.checkExperimentTarget(ctx, j)
	case SubjectHoldout:
		if j.Target == "" {
			return nil
		}
		return targetExists(ctx, "holdout", j.Target, func(ctx context.Context, k string) error { _, err := d.Store.GetHoldout(ctx, k); return err })
	case SubjectJourney:
		if j.Target == "" {
			return nil
		}
		return targetExists(ctx, "journey", j.Target, func(ctx context.Context, k string) error { _, err := d.Store.GetJourney(ctx, k); return err })
	default:
		return experiment.E("jobs.digest", experiment.Invalid, experiment.Field("params.subject"),
			experiment.Errorf("must be experiment, holdout or journey, got %q", p.Subject))
	}
}

// targets returns the experiment named by the job, or every running experiment.
func (d Deps) targets(ctx context.Context, j *experiment.Job) ([]string, error) {
	if j.Target != "" {
		if _, err := d.Store.GetExperiment(ctx, j.Target); err != nil {
			return nil, err
		}
		return []string{j.Target}, nil
	}
	es, err := d.Store.ListExperiments(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range es {
		if e.Status == experiment.Running {
			keys = append(keys, e.Key)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// refresh recomputes and snapshots the results of the target experiments.
func (d Deps) refresh(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
	keys, err := d.targets(ctx, j)
	if err != nil {
		return nil, err
	}
	snaps := map[string]int64{}
	for _, k := range keys {
		r, err := d.results().ExperimentResults(ctx, k, results.Options{})
		if err != nil {
			if experiment.Is(err, experiment.InsufficientData) {
				continue
			}
			return nil, fmt.Errorf("results of %s: %w", k, err)
		}
		snaps[k] = r.Snapshot
	}
	return map[string]any{"snapshots": snaps}, nil
}

// MonitorParams are the settings of a monitor job (its params JSON).
type MonitorParams struct {
	Webhook    string              `json:"webhook,omitempty"`     // alerts are POSTed here as JSON (Slack-compatible "text")
	StaleAfter experiment.Duration `json:"stale_after,omitempty"` // default 24h without new exposures or events
	// SRMConcentration is the concentration of the sequential SRM's Dirichlet
	// mixture (analysis.SequentialSRM); default analysis.DefaultSRMConcentration (1,000). Smaller values find
	// large mismatches in small experiments sooner, larger ones small
	// mismatches in large experiments.
	SRMConcentration float64 `json:"srm_concentration,omitempty"`
}

// sequentialSRM is the anytime-valid SRM check of an experiment's current
// exposure counts (ok false for fewer than two arms).
func (d Deps) sequentialSRM(ctx context.Context, key string, r *results.Results, concentration float64) (analysis.SequentialSRMResult, bool, error) {
	e, err := d.Store.GetExperiment(ctx, key)
	if err != nil {
		return analysis.SequentialSRMResult{}, false, err
	}
	if len(e.Variants) < 2 {
		return analysis.SequentialSRMResult{}, false, nil
	}
	counts := make([]float64, len(e.Variants))
	weights := make([]float64, len(e.Variants))
	for i, v := range e.Variants {
		counts[i], weights[i] = float64(r.Exposures[v.Name]), v.Weight
	}
	return analysis.SequentialSRM([][]float64{counts}, weights, concentration, analysis.DefaultSRMThreshold), true, nil
}

// monitor checks SRM (sequentially), guardrail metrics and data freshness of the target experiments.
func (d Deps) monitor(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
	var p MonitorParams
	if len(j.Params) > 0 {
		if err := json.Unmarshal(j.Params, &p); err != nil {
			return nil, experiment.E("jobs.monitor", experiment.Invalid, experiment.Field("params"), err)
		}
	}
	if p.StaleAfter == 0 {
		p.StaleAfter = experiment.Duration(24 * time.Hour)
	}
	keys, err := d.targets(ctx, j)
	if err != nil {
		return nil, err
	}
	now := d.Now().UTC()
	var alerts []*experiment.Alert
	add := func(kind, target, severity, msg string) {
		alerts = append(alerts, &experiment.Alert{At: now, Job: j.Name, Period: period.UTC(), Kind: kind, Target: target, Severity: severity, Message: msg})
	}
	for _, k := range keys {
		r, err := d.results().ExperimentResults(ctx, k, results.Options{NoSnapshot: true})
		if err != nil {
			if experiment.Is(err, experiment.InsufficientData) {
				continue
			}
			return nil, fmt.Errorf("results of %s: %w", k, err)
		}
		var private map[string]bool // metrics judged on the DP release
		if d.PrivateGuardrails != nil {
			checks, ok, err := d.PrivateGuardrails(ctx, j, k)
			if err != nil {
				return nil, fmt.Errorf("private release of %s: %w", k, err)
			}
			if ok {
				private = map[string]bool{}
			}
			for _, c := range checks {
				private[c.Metric] = true
				if c.Status == experiment.GuardrailBreached {
					add("guardrail", k, "critical", fmt.Sprintf("Experiment %s: %s moved the wrong way in %s (relative effect %+.1f%%, %+.1f%% to %+.1f%%, in the private release of %s that its summaries show).",
						k, c.Metric, c.Variant, 100*c.Estimate, 100*c.Low, 100*c.High, c.ReleasedAt.UTC().Format(time.RFC3339)))
				}
			}
		}
		// The monitor looks again at every run: a chi-square read at every look
		// would raise false alarms far above its threshold. The sequential SRM's
		// Bayes factor at the current counts is anytime-valid (Ville's
		// inequality bounds the chance that any run ever alarms without a
		// mismatch by the threshold).
		if srm, ok, err := d.sequentialSRM(ctx, k, r, p.SRMConcentration); err != nil {
			return nil, fmt.Errorf("sequential SRM of %s: %w", k, err)
		} else if ok && srm.Mismatch {
			add("srm", k, "critical", fmt.Sprintf("Experiment %s has a sample-ratio mismatch (sequential p = %.2g < %.2g): exposure counts %v do not match the configured weights; its results cannot be trusted until the cause is found.", k, srm.PValue, srm.Threshold, r.Exposures))
		}
		for _, m := range r.Metrics {
			if private[m.Name] {
				continue
			}
			def, err := d.Store.GetMetricVersion(ctx, m.Name, m.Version) // the version the results used
			if err != nil {
				continue
			}
			for _, c := range m.Comparisons {
				pv := c.Absolute.PValue
				if c.Adjusted != nil {
					pv = c.Adjusted.Absolute
				}
				harmful := (def.HigherIsBetter() && c.Absolute.Estimate < 0) || (!def.HigherIsBetter() && c.Absolute.Estimate > 0)
				if harmful && pv < m.Alpha {
					add("guardrail", k, "critical", fmt.Sprintf("Experiment %s: %s moved the wrong way in %s (relative effect %+.1f%%, p = %.2g).", k, m.Name, c.Variant, 100*c.Relative.Estimate, pv))
				}
			}
		}
		latest := r.Freshness.LatestExposure
		if e := r.Freshness.LatestEvent; e != nil && (latest == nil || e.After(*latest)) {
			latest = e
		}
		if latest == nil || now.Sub(*latest) > time.Duration(p.StaleAfter) {
			when := "never"
			if latest != nil {
				when = latest.UTC().Format(time.RFC3339)
			}
			add("stale_data", k, "warning", fmt.Sprintf("Experiment %s has received no exposures or events for over %s (latest: %s).", k, time.Duration(p.StaleAfter), when))
		}
	}
	ids := []int64{}
	for _, a := range alerts {
		// A finding already raised for this period (a retried or restarted run)
		// is not logged twice; its delivery is retried below if it failed.
		if _, err := d.Store.AddAlert(ctx, a); err != nil {
			return nil, err
		}
		ids = append(ids, a.ID)
	}
	out := map[string]any{"checked": keys, "alerts": ids}
	if err := d.deliver(ctx, j, period, p.Webhook); err != nil {
		return out, err
	}
	return out, nil
}

// deliver posts to webhook (none when empty), at least once, every alert of the
// job's period that no webhook has acknowledged, whether raised now or by an
// earlier attempt whose delivery failed; a failed delivery fails the run, which
// is retried.
func (d Deps) deliver(ctx context.Context, j *experiment.Job, period time.Time, webhook string) error {
	if webhook == "" {
		return nil
	}
	pending, err := d.Store.UndeliveredAlerts(ctx, j.Name, period.UTC())
	if err != nil {
		return err
	}
	failed := 0
	for _, a := range pending {
		perr := d.post(ctx, webhook, a)
		attempts, err := d.Store.RecordDelivery(ctx, a.ID, perr == nil)
		if err != nil {
			return err
		}
		if perr != nil {
			failed++
			d.Logger.Warn("webhook delivery failed", "job", j.Name, "alert", a.ID, "attempt", attempts, "error", perr.Error())
		}
	}
	if failed > 0 {
		return fmt.Errorf("webhook delivery to %s failed for %d of %d alerts; it is retried with the run (details in the server log)",
			hostOf(webhook), failed, len(pending))
	}
	return nil
}

// hostOf is the host of a webhook URL, as failed deliveries name it: the path
// and query may hold a secret (Slack's do).
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return "the webhook"
}

// webhookBody is what a monitor POSTs: Slack's incoming-webhook "text" plus the alert.
type webhookBody struct {
	Text  string            `json:"text"`
	Alert *experiment.Alert `json:"alert"`
}

func (d Deps) post(ctx context.Context, target string, a *experiment.Alert) error {
	icon := ":warning:"
	if a.Severity == "critical" {
		icon = ":rotating_light:"
	}
	body, err := json.Marshal(webhookBody{Text: fmt.Sprintf("%s *Lift %s alert* (%s): %s", icon, a.Kind, a.Severity, a.Message), Alert: a})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// DigestParams are the settings of a digest job (its params JSON).
type DigestParams struct {
	// Subject is what the digest summarizes: "experiment" (the default: the
	// target experiment, or every running one), "holdout" (the long-run
	// incrementality of the target holdout's current cohort, or of every holdout)
	// or "journey" (the target journey's experiment, personalized vs control, or
	// every journey's).
	Subject string `json:"subject,omitempty"`
}

// Digest subjects and the prefixes of their targets as Deps.Digest receives them:
// an experiment key as it is, "holdout:NAME", "journey:KEY".
const (
	SubjectExperiment = "experiment"
	SubjectHoldout    = "holdout"
	SubjectJourney    = "journey"
)

// digestTargets resolves the targets of a digest job, prefixed by subject.
func (d Deps) digestTargets(ctx context.Context, j *experiment.Job) ([]string, error) {
	const op = "jobs.digest"
	var p DigestParams
	if len(j.Params) > 0 {
		if err := json.Unmarshal(j.Params, &p); err != nil {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("params"), err)
		}
	}
	var names []string
	switch p.Subject {
	case "", SubjectExperiment:
		return d.targets(ctx, j)
	case SubjectHoldout:
		hs, err := oneOrAll(ctx, j.Target, d.Store.GetHoldout, d.Store.ListHoldouts)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			names = append(names, h.Name)
		}
	case SubjectJourney:
		js, err := oneOrAll(ctx, j.Target, d.Store.GetJourney, d.Store.ListJourneys)
		if err != nil {
			return nil, err
		}
		for _, x := range js {
			names = append(names, x.Key)
		}
	default:
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("params.subject"),
			experiment.Errorf("must be experiment, holdout or journey, got %q", p.Subject))
	}
	sort.Strings(names)
	for i, n := range names {
		names[i] = p.Subject + ":" + n
	}
	return names, nil
}

// oneOrAll returns the named target (get), or every one (list) when target is "".
func oneOrAll[T any](ctx context.Context, target string, get func(context.Context, string) (T, error), list func(context.Context) ([]T, error)) ([]T, error) {
	if target == "" {
		return list(ctx)
	}
	x, err := get(ctx, target)
	if err != nil {
		return nil, err
	}
	return []T{x}, nil
}

// digest publishes one digest per target (idempotently, keyed by job and period).
func (d Deps) digest(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
	keys, err := d.digestTargets(ctx, j)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, k := range keys {
		dg, err := d.Digest(ctx, j, period, k)
		if err != nil {
			if experiment.Is(err, experiment.InsufficientData) {
				continue
			}
			return nil, fmt.Errorf("digest of %s: %w", k, err)
		}
		if _, err := d.Store.PublishDigest(ctx, dg); err != nil {
			return nil, err
		}
		ids = append(ids, dg.ID)
	}
	return map[string]any{"digests": ids}, nil
}

// results is d.Results, or the service over d.Store and its DuckDB engine.
func (d Deps) results() *results.Service {
	if d.Results != nil {
		return d.Results
	}
	return results.New(d.Store, d.Store, d.Store.Engine(), d.Store.Now)
}
