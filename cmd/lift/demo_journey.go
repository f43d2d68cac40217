package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/scorer/als"
	"github.com/liftlab/lift/store"
)

// journeyDemo are the sizes of the journey stage of "lift demo".
type journeyDemo struct {
	Users      int    // simulated users (default 4,000)
	Items      int    // catalog size (default 2,000)
	Categories int    // item categories; each user prefers one (default 20)
	Views      int    // past views per user (default 12)
	Seed       uint64 // seed of the simulation (default 1)
	// Rounds: the users decide in this many rounds, the clicks of each round
	// stored before the next, so that exploration can learn from them (default 4).
	Rounds int
	// Exploration is the journey's exploration (default: Thompson sampling over
	// items for every demo user, budget 0.2).
	Exploration experiment.Exploration
	ModelDir    string // where the model is written (default a new temporary folder)
	// Model is the training's options (zero fields: lift model train's
	// defaults, als.DefaultOptions); Seed defaults to the simulation's.
	Model als.Options
	// Clock, when set, is the store's clock: the registrations are dated back
	// to just before the simulated decisions.
	Clock *demoClock
}

// demoJourney runs the journey stage of the demo on db: a synthetic catalog and
// view history, an ALS model trained on it and served by the CPU scorer, a
// journey with a permanent holdout, one decision per user, simulated clicks on
// what was shown, and the personalized-vs-control comparison.
func demoJourney(ctx context.Context, e *env, db *store.DB, o journeyDemo) error {
	if o.Users <= 0 {
		o.Users = 4000
	}
	if o.Items <= 0 {
		o.Items = 2000
	}
	if o.Categories <= 0 {
		o.Categories = 20
	}
	if o.Views <= 0 {
		o.Views = 12
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Rounds <= 0 {
		o.Rounds = 4
	}
	if o.Model.Seed == 0 {
		o.Model.Seed = o.Seed
	}
	if o.Exploration.Kind == "" {
		// Every demo user has 5 recent items: min_history 6 makes them all new units.
		o.Exploration = experiment.Exploration{Kind: experiment.ExploreThompson, MinHistory: 6, Budget: 0.2}
	}
	out := e.stdout
	rng := rand.New(rand.NewPCG(o.Seed, 0x70e1))
	start := time.Now().UTC().Add(-2 * 24 * time.Hour).Truncate(time.Hour)
	cat := func(item int) int { return item % o.Categories }
	itemID := func(i int) string { return "sku-" + strconv.Itoa(i) }

	// 1. Past views: 80% in the user's preferred category, popular items more often.
	pref := make([]int, o.Users)
	recent := make([][]string, o.Users)
	var events []experiment.Event
	perCat := o.Items / o.Categories
	for u := range o.Users {
		pref[u] = rng.IntN(o.Categories)
		for v := range o.Views {
			c := pref[u]
			if rng.Float64() >= 0.8 {
				c = rng.IntN(o.Categories)
			}
			r := rng.Float64()
			item := c + o.Categories*int(r*r*float64(perCat)) // skewed towards low ranks
			ts := start.Add(-time.Duration(30*24-v*48) * time.Hour).Add(time.Duration(u) * time.Second)
			props, _ := json.Marshal(map[string]string{"item": itemID(item), "category": "cat-" + strconv.Itoa(cat(item))})
			events = append(events, experiment.Event{EventID: fmt.Sprintf("jv-%d-%d", u, v), Unit: demoUser(u), Type: "view", TS: ts, Value: 1, Properties: props})
			recent[u] = append([]string{itemID(item)}, recent[u]...)
		}
		recent[u] = recent[u][:min(5, len(recent[u]))]
	}
	if _, _, err := db.IngestEvents(ctx, events); err != nil {
		return fmt.Errorf("journey demo: storing views: %w", err)
	}
	fmt.Fprintf(out, "\nPersonalized journey\n  catalog     %d items in %d categories; %d users with %d past views each\n", o.Items, o.Categories, o.Users, o.Views)

	// 2. Train the model from the store, as "lift model train" does, and serve it.
	cats := map[string]string{}
	inter, _, _, err := readInteractions(ctx, db, []string{"view"}, time.Time{}, time.Time{}, cats)
	if err != nil {
		return err
	}
	m, card, err := als.Build(ctx, inter, als.BuildOptions{
		// lift model train's defaults (als.DefaultOptions: 64 factors, 15 sweeps,
		// λ = 50, α = 5), behind its membership-inference gate.
		Options: o.Model, K: 10, Name: "demo-shop", Now: start,
		ItemCategories: cats,
		TrainingData:   "synthetic views of the lift demo",
	})
	if err != nil {
		return fmt.Errorf("journey demo: training: %w", err)
	}
	dir := o.ModelDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lift-demo-models-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("journey demo: model folder: %w", err)
	}
	path := filepath.Join(dir, "demo-shop.safetensors")
	if err := m.Save(ctx, path); err != nil {
		return err
	}
	if err := card.Save(ctx, path); err != nil {
		return err
	}
	ev := card.Evaluation
	fmt.Fprintf(out, "  model       %s (ALS, d=%d): recall@10 %.3f vs %.3f most-popular; NDCG@10 %.3f vs %.3f; exposure Gini %.2f\n",
		path, m.Dim, ev.Recall, ev.BaselineRecall, ev.NDCG, ev.BaselineNDCG, card.Exposure.Gini)
	mi := card.Membership
	fmt.Fprintf(out, "  gate        membership-inference attack AUC %.3f (95%% interval %.3f to %.3f; fails above %.2f): deployable %v\n",
		mi.AUC, mi.Low, mi.High, mi.MaxAUC, mi.Passed)
	models, err := journey.LoadModels(ctx, dir, journey.LoadOptions{Kind: scorer.KindCPU, Batch: scorer.BatchOptions{MaxWait: time.Millisecond}})
	if err != nil {
		return err
	}
	defer models.Close()

	// 3. Register the journey: a 10% permanent holdout, a 50/50 experiment, a clicks metric.
	const actor = "demo"
	if o.Clock != nil {
		o.Clock.set(start.Add(-time.Hour))
		defer o.Clock.wall()
	}
	if _, err := db.CreateHoldout(ctx, actor, &experiment.Holdout{Name: "journeys-holdout", Fraction: 0.1,
		Description: "units kept out of every personalized journey"}); err != nil {
		return err
	}
	if _, err := db.CreateMetric(ctx, actor, &experiment.Metric{Name: "journey_clicks", EventType: "click", Aggregation: experiment.Count,
		Description: "clicks on items shown by the home journey"}); err != nil {
		return err
	}
	if _, err := db.CreateExperiment(ctx, actor, &experiment.Experiment{Key: "home-feed", Holdout: "journeys-holdout",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "personalized", Weight: 0.5}},
		Metrics:  []experiment.MetricRef{{Name: "journey_clicks", Primary: true}}}); err != nil {
		return err
	}
	if _, err := db.StartExperiment(ctx, actor, "home-feed"); err != nil {
		return err
	}
	j, err := db.CreateJourney(ctx, actor, &experiment.Journey{Key: "home", Experiment: "home-feed", Model: "demo-shop", K: 10,
		Exploration: o.Exploration, ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlPopular, EventType: "view", Days: 60}})
	if err != nil {
		return err
	}
	if o.Clock != nil {
		o.Clock.wall()
	}
	explore := fmt.Sprintf("%s ε=%.2f", j.Exploration.Kind, j.Exploration.Epsilon)
	if j.Exploration.Kind == experiment.ExploreThompson {
		explore = fmt.Sprintf("%s (budget %.2f of the slots for units under %d recent items, ε=%.2f for the others)",
			j.Exploration.Kind, j.Exploration.Budget, j.Exploration.MinHistory, j.Exploration.Epsilon)
	}
	fmt.Fprintf(out, "  journey     %s: experiment %s, holdout %s, k=%d, budget %s, exploration %s, consent tier %d\n",
		j.Key, j.Experiment, j.Holdout, j.K, time.Duration(j.LatencyBudget), explore, j.ConsentTier)

	// 4. One decision per user (10% gave functional consent only), 32 at a
	// time, in rounds; after each round its clicks are stored (5.) and the
	// journey's click record is read again, so that exploration learns.
	clock := start
	dec := journey.New(db, models, journey.Options{Now: func() time.Time { return clock }, Seed: o.Seed,
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	consent := make([]int, o.Users)
	for u := range consent {
		consent[u] = experiment.ConsentPersonalization
		if rng.Float64() < 0.1 {
			consent[u] = experiment.ConsentFunctional
		}
	}
	decisions := make([]*journey.Decision, o.Users)
	errs := make([]error, o.Users)
	var rounds []roundClicks
	for r := range o.Rounds {
		from, to := r*o.Users/o.Rounds, (r+1)*o.Users/o.Rounds
		clock = start.Add(time.Duration(r) * time.Minute)
		var wg sync.WaitGroup
		next := make(chan int)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for u := range next {
					decisions[u], errs[u] = dec.Decide(ctx, "home", journey.Request{Unit: demoUser(u),
						Context: journey.Context{RecentItems: recent[u], ConsentTier: consent[u]}})
				}
			}()
		}
		for u := from; u < to; u++ {
			next <- u
		}
		close(next)
		wg.Wait()
		for _, err := range errs[from:to] {
			if err != nil {
				dec.Close()
				return fmt.Errorf("journey demo: decide: %w", err)
			}
		}

		// 5. Outcomes: a shown item is clicked with probability 6% in the user's
		// preferred category and 1% otherwise; the click names the item.
		events = events[:0]
		var rc roundClicks
		for u := from; u < to; u++ {
			d := decisions[u]
			for i, it := range d.Items {
				n, err := strconv.Atoi(it.ID[len("sku-"):])
				if err != nil {
					continue
				}
				p := 0.01
				if cat(n) == pref[u] {
					p = 0.06
				}
				click := rng.Float64() < p
				if d.Policy == experiment.PolicyPersonalized {
					rc.add(it.Reason, click)
				}
				if click {
					props, _ := json.Marshal(map[string]string{"item": it.ID})
					events = append(events, experiment.Event{EventID: fmt.Sprintf("jc-%d-%d", u, i), Unit: demoUser(u), Type: "click",
						TS: clock.Add(30 * time.Second), Value: 1, Properties: props})
				}
			}
		}
		if _, _, err := db.IngestEvents(ctx, events); err != nil {
			dec.Close()
			return fmt.Errorf("journey demo: storing clicks: %w", err)
		}
		rounds = append(rounds, rc)
		dec.Invalidate("home")
	}
	guard := dec.Guardrails()
	if err := dec.Close(); err != nil {
		return err
	}

	// 6. The comparison the scheduled job runs.
	cmp, err := journey.Compare(ctx, db, api.ResultsOver(db), "home", start.Truncate(24*time.Hour), start.Add(48*time.Hour))
	if err != nil {
		return err
	}
	s := cmp.Summary
	fmt.Fprintf(out, "  decisions   %d: personalized %d, control %d, holdout %d, fallback %d, ineligible %d\n",
		s.Decisions, s.Personalized, s.Control, s.Holdout, s.Fallback, s.Ineligible)
	for _, g := range guard {
		causes := ""
		if len(g.Fallbacks) > 0 {
			causes = fmt.Sprintf(" (by cause: %v)", g.Fallbacks)
		}
		fmt.Fprintf(out, "  guardrails  latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; fallback rate %.3f%s; ineligible %.3f; item-exposure Gini %.3f over %d items\n",
			g.LatencyP50, g.LatencyP95, g.LatencyP99, g.FallbackRate, causes, g.IneligibleShare, g.Gini, g.DistinctItems)
	}
	printJourneyResult(out, "personalized vs control (intention to treat)", cmp.Results, cmp.ResultsError)
	printJourneyResult(out, "exposed vs permanent holdout", cmp.HoldoutResults, cmp.HoldoutError)
	var all roundClicks
	fmt.Fprintf(out, "  exploration clicks per personalized slot, by round (explored slots / the model's slots):")
	for _, rc := range rounds {
		fmt.Fprintf(out, " %s", rc)
		all.explored, all.exploredClicks = all.explored+rc.explored, all.exploredClicks+rc.exploredClicks
		all.model, all.modelClicks = all.model+rc.model, all.modelClicks+rc.modelClicks
	}
	fmt.Fprintf(out, "; all slots %.4f (%d clicks on %d slots, %d explored)\n", all.rate(), all.exploredClicks+all.modelClicks, all.explored+all.model, all.explored)

	// 7. Consent and erasure, for one personalized shopper.
	for u, d := range decisions {
		if d.Policy == experiment.PolicyPersonalized {
			return demoConsent(ctx, out, db, models, o, clock, demoUser(u), recent[u])
		}
	}
	return nil
}

// demoConsent records a unit's consent, withdraws it to tier 1 and erases the
// unit, deciding after each change: the next decision follows the stored consent.
func demoConsent(ctx context.Context, out io.Writer, db *store.DB, models *journey.Models, o journeyDemo, now time.Time, unit string, recent []string) error {
	dec := journey.New(db, models, journey.Options{Now: func() time.Time { return now }, Seed: o.Seed})
	defer dec.Close()
	decide := func(label string) error {
		d, err := dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{RecentItems: recent}})
		if err != nil {
			return fmt.Errorf("journey demo: decide: %w", err)
		}
		var ids []string
		for _, it := range d.Items[:min(3, len(d.Items))] {
			ids = append(ids, it.ID)
		}
		fmt.Fprintf(out, "  consent     %s: %s → tier %d (%s), signals %v, %s %v…\n", unit, label, d.Consent.Tier, d.Consent.Source, d.Consent.Signals, d.Policy, ids)
		return nil
	}
	record := func(tier int, purposes ...string) (*store.ConsentChange, error) {
		return db.RecordConsent(ctx, "demo", experiment.Consent{Unit: unit, Tier: tier, Purposes: purposes, PolicyID: "privacy", PolicyVersion: "2026-11"})
	}
	if _, err := record(experiment.ConsentPersonalization, experiment.PurposePersonalization); err != nil {
		return err
	}
	if err := decide("stored tier 2"); err != nil {
		return err
	}
	ch, err := record(experiment.ConsentFunctional)
	if err != nil {
		return err
	}
	if err := decide(fmt.Sprintf("withdrawn to tier 1 (purged %d item events)", ch.Purged.ItemHistory)); err != nil {
		return err
	}
	er, err := db.EraseUnit(ctx, "demo", unit)
	if err != nil {
		return err
	}
	left, err := db.ExportUnit(ctx, unit)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  erased      %s → %s: %d events, %d consents deleted; %d exposures, %d decisions kept under the pseudonym; left under the id: %d exposures, %d events, %d decisions\n",
		unit, er.Pseudonym, er.Removed.Events, er.Removed.Consents, er.Removed.Exposures, er.Removed.Decisions, len(left.Exposures), len(left.Events), len(left.Decisions))
	return nil
}

// roundClicks counts, in one round, the personalized slots shown and clicked,
// those filled by exploration apart.
type roundClicks struct {
	explored, exploredClicks, model, modelClicks int
}

func (r *roundClicks) add(reason string, click bool) {
	c := 0
	if click {
		c = 1
	}
	if reason == "something new to explore" || strings.HasPrefix(reason, "exploring: ") {
		r.explored, r.exploredClicks = r.explored+1, r.exploredClicks+c
		return
	}
	r.model, r.modelClicks = r.model+1, r.modelClicks+c
}

// rate is the clicks per slot of all slots.
func (r roundClicks) rate() float64 {
	if n := r.explored + r.model; n > 0 {
		return float64(r.exploredClicks+r.modelClicks) / float64(n)
	}
	return 0
}

func (r roundClicks) String() string {
	rate := func(c, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(c) / float64(n)
	}
	return fmt.Sprintf("%.4f/%.4f", rate(r.exploredClicks, r.explored), rate(r.modelClicks, r.model))
}

func demoUser(u int) string { return "shopper-" + strconv.Itoa(u) }

func printJourneyResult(out io.Writer, title string, r *results.Results, errText string) {
	if r == nil {
		fmt.Fprintf(out, "  %s: not available: %s\n", title, errText)
		return
	}
	for _, mr := range r.Metrics {
		if mr.Error != "" {
			fmt.Fprintf(out, "  %s, %s: %s\n", title, mr.Name, mr.Error)
			continue
		}
		fmt.Fprintf(out, "  %s, %s per unit:\n", title, mr.Name)
		for _, v := range mr.Variants {
			name := v.Name
			if name == "" {
				name = "holdout"
			}
			fmt.Fprintf(out, "    %-13s n=%-6d mean %.4f\n", name, v.N, v.Mean)
		}
		for _, c := range mr.Comparisons {
			fmt.Fprintf(out, "    %s: %+.1f%% (95%% CI %+.1f%% to %+.1f%%), p = %.2g\n", c.Variant,
				100*c.Relative.Estimate, 100*c.Relative.CILow, 100*c.Relative.CIHigh, c.Relative.PValue)
		}
	}
}
