package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// Deps are what the job kinds work with.
type Deps struct {
	Store *store.DB
	HTTP  *http.Client     // webhook client, default one with a 10 s timeout
	Now   func() time.Time // default time.Now
	// Digest builds the executive digest of one target for one period (an
	// experiment key, "holdout:NAME" or "journey:KEY"; see DigestParams); it is
	// set by the server, which owns the privacy ledger and the report renderer.
	// Nil leaves the digest kind unavailable.
	Digest func(ctx context.Context, j *experiment.Job, period time.Time, target string) (*experiment.Digest, error)
	// Journeys compares personalized, control and holdout units of each journey;
	// nil leaves the journey_comparison kind unavailable.
	Journeys Func
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
	if d.HTTP == nil {
		d.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	k := map[experiment.JobKind]Func{
		experiment.JobResultsRefresh: d.refresh,
		experiment.JobMonitor:        d.monitor,
	}
	if d.Digest != nil {
		k[experiment.JobDigest] = d.digest
	}
	if d.Journeys != nil {
		k[experiment.JobJourneyComparison] = d.Journeys
	}
	return k
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
		r, err := d.Store.ExperimentResults(ctx, k, store.ResultsOptions{})
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
}

// monitor checks SRM, guardrail metrics and data freshness of the target experiments.
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
		r, err := d.Store.ExperimentResults(ctx, k, store.ResultsOptions{NoSnapshot: true})
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
		if r.SRM.Mismatch {
			add("srm", k, "critical", fmt.Sprintf("Experiment %s has a sample-ratio mismatch (p = %.2g < %.2g): exposure counts %v do not match the configured weights; its results cannot be trusted until the cause is found.", k, r.SRM.PValue, r.SRM.Threshold, r.Exposures))
		}
		for _, m := range r.Metrics {
			if private[m.Name] {
				continue
			}
			def, err := d.Store.GetMetric(ctx, m.Name)
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
	var ids []int64
	var deliveryErr error
	for _, a := range alerts {
		created, err := d.Store.AddAlert(ctx, a)
		if err != nil {
			return nil, err
		}
		if !created { // already raised for this period (a retried or restarted run)
			continue
		}
		ids = append(ids, a.ID)
		if p.Webhook == "" {
			continue
		}
		if err := d.post(ctx, p.Webhook, a); err != nil {
			deliveryErr = err
			continue
		}
		if err := d.Store.MarkAlertDelivered(ctx, a.ID); err != nil {
			return nil, err
		}
	}
	out := map[string]any{"checked": keys, "alerts": ids}
	if deliveryErr != nil {
		return out, fmt.Errorf("webhook delivery: %w", deliveryErr)
	}
	return out, nil
}

// webhookBody is what a monitor POSTs: Slack's incoming-webhook "text" plus the alert.
type webhookBody struct {
	Text  string            `json:"text"`
	Alert *experiment.Alert `json:"alert"`
}

func (d Deps) post(ctx context.Context, url string, a *experiment.Alert) error {
	icon := ":warning:"
	if a.Severity == "critical" {
		icon = ":rotating_light:"
	}
	body, err := json.Marshal(webhookBody{Text: fmt.Sprintf("%s *Lift %s alert* (%s): %s", icon, a.Kind, a.Severity, a.Message), Alert: a})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
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
		return fmt.Errorf("webhook %s answered %s", url, resp.Status)
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
