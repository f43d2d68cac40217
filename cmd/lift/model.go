package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/scorer/als"
	"github.com/liftlab/lift/store"
)

const modelDescription = `
Train and inspect personalization models.

  lift model train --db PATH --name NAME [--out DIR] [flags]
      Fit implicit-feedback ALS (Hu, Koren & Volinsky 2008) on the interaction
      events of the store: events of the --event-type types whose properties JSON
      has an "item" (e.g. {"item": "sku-123"}); each event counts 1. Evaluates
      recall@k and NDCG@k on held-out interactions (each user's last item) against
      a most-popular baseline, refits on everything, and writes DIR/NAME.safetensors
      with its model card DIR/NAME.card.json and DIR/NAME.card.md. An event's
      "category" property (e.g. {"item": "sku-123", "category": "books"}) is the
      item's category, written into the model (per-category opt-outs, category
      diversity) and reported on the card.

      Gate: a membership-inference attack on users. A second model is trained with
      the same flags on 80% of the users; each user's vector is folded in from all
      of the user's events, and the attack tells the trained-on users from the
      held-out ones by how well the model predicts their items. Above
      --max-mia-auc (default 0.6) the model is written marked not deployable and
      the command fails.

  lift model card --file DIR/NAME.safetensors [--format markdown|json]
      Print the card of a model file.`

func runModel(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := e.flags("model", "train|card [flags]", modelDescription)
		if err := e.parse(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errUsage
	}
	switch args[0] {
	case "train":
		return runModelTrain(ctx, e, args[1:])
	case "card":
		return runModelCard(ctx, e, args[1:])
	default:
		fmt.Fprintf(e.stderr, "lift model: unknown subcommand %q (want train or card)\n", args[0])
		return errUsage
	}
}

// trainConfig is what "lift model train" is asked to do.
type trainConfig struct {
	db, name, out, eventTypes, version, from, to string
	factors, iters, k                            int
	lambda, alpha, maxMIAAUC                     float64
	dpEpsilon, dpDelta, dpClip                   float64
	dpMaxItems                                   int
	seed                                         uint64
	evaluateOnly                                 bool
}

func runModelTrain(ctx context.Context, e *env, args []string) error {
	var c trainConfig
	fs := e.flags("model train", "--db PATH --name NAME [--out DIR] [flags]", modelDescription)
	fs.StringVar(&c.db, "db", "", "DuckDB `file` holding the interaction events (required)")
	fs.StringVar(&c.name, "name", "", "model `name` (required): the file is NAME.safetensors")
	fs.StringVar(&c.out, "out", ".", "`folder` to write the model and its card to (the server's --models folder)")
	fs.StringVar(&c.eventTypes, "event-type", "view", "comma-separated event `types` that are interactions")
	fs.StringVar(&c.from, "from", "", "use events at or after this `time` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&c.to, "to", "", "use events before this `time` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&c.version, "version", "", "model `version` (default the training time, 20060102T150405Z)")
	fs.IntVar(&c.factors, "factors", 64, "embedding `dimension` d")
	fs.IntVar(&c.iters, "iters", 15, "ALS `sweeps`")
	fs.Float64Var(&c.lambda, "lambda", als.DefaultLambda, "L2 regularization λ")
	fs.Float64Var(&c.alpha, "alpha", als.DefaultAlpha, "confidence scale α (c = 1 + α·r)")
	fs.IntVar(&c.k, "k", 10, "evaluation cut-off k of recall@k and NDCG@k")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the initial factors")
	fs.BoolVar(&c.evaluateOnly, "evaluate-only", false, "ship the model trained on the training split (skip the refit on all interactions)")
	fs.Float64Var(&c.dpEpsilon, "dp-epsilon", 0, "train with user-level (ε, δ)-differential privacy of the item factors at this `ε` (0: off)")
	fs.Float64Var(&c.dpDelta, "dp-delta", 1e-6, "δ of --dp-epsilon")
	fs.Float64Var(&c.dpClip, "dp-clip", 1, "with --dp-epsilon: L2 `bound` of a user factor")
	fs.IntVar(&c.dpMaxItems, "dp-max-items", 50, "with --dp-epsilon: items kept per user (the rest dropped at random)")
	fs.Float64Var(&c.maxMIAAUC, "max-mia-auc", als.DefaultMaxMIAAUC, "membership-inference gate: above this attack `AUC` the model is written marked not deployable and training fails (1 or more: report only)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	return trainModel(ctx, e, c, time.Now())
}

func trainModel(ctx context.Context, e *env, c trainConfig, now time.Time) error {
	const op = "model train"
	bad := func(flag, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(flag), experiment.Errorf(format, args...))
	}
	switch {
	case c.db == "":
		return bad("--db", "required: the DuckDB file with the interaction events")
	case !experiment.ValidKey(c.name):
		return bad("--name", "must be 1-128 letters, digits, '_', '.' or '-', got %q", c.name)
	case c.factors < 1 || c.factors > 1024:
		return bad("--factors", "must be in [1, 1024], got %d", c.factors)
	case c.iters < 1:
		return bad("--iters", "must be at least 1, got %d", c.iters)
	case c.k < 1:
		return bad("--k", "must be at least 1, got %d", c.k)
	case !(c.lambda > 0):
		return bad("--lambda", "must be positive, got %g", c.lambda)
	case !(c.alpha > 0):
		return bad("--alpha", "must be positive, got %g", c.alpha)
	case !(c.maxMIAAUC > 0.5):
		return bad("--max-mia-auc", "must be above 0.5 (an attack at chance), got %g", c.maxMIAAUC)
	case c.dpEpsilon < 0 || math.IsInf(c.dpEpsilon, 0):
		return bad("--dp-epsilon", "must be positive (or 0: no differential privacy), got %g", c.dpEpsilon)
	case c.dpEpsilon > 0 && !(c.dpDelta > 0 && c.dpDelta < 1):
		return bad("--dp-delta", "must be in (0, 1), got %g", c.dpDelta)
	case c.dpEpsilon > 0 && !(c.dpClip > 0):
		return bad("--dp-clip", "must be positive, got %g", c.dpClip)
	case c.dpEpsilon > 0 && c.dpMaxItems < 1:
		return bad("--dp-max-items", "must be at least 1, got %d", c.dpMaxItems)
	}
	var dp *als.DP
	if c.dpEpsilon > 0 {
		dp = &als.DP{Epsilon: c.dpEpsilon, Delta: c.dpDelta, Clip: c.dpClip, MaxItems: c.dpMaxItems}
	}
	var from, to time.Time
	var err error
	if c.from != "" {
		if from, err = parseTimeFlag(c.from); err != nil {
			return bad("--from", "%v", err)
		}
	}
	if c.to != "" {
		if to, err = parseTimeFlag(c.to); err != nil {
			return bad("--to", "%v", err)
		}
	}
	var types []string
	for _, t := range strings.Split(c.eventTypes, ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return bad("--event-type", "name at least one event type")
	}
	if _, err := os.Stat(c.db); err != nil {
		return bad("--db", "%v", err)
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return bad("--out", "%v", err)
	}
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := store.Open(ctx, c.db, sopt)
	if err != nil {
		return err
	}
	cats := map[string]string{}
	inter, first, last, err := readInteractions(ctx, db, types, from, to, cats)
	db.Close()
	if err != nil {
		return err
	}
	if len(inter) == 0 {
		return experiment.E(op, experiment.InsufficientData, experiment.Errorf(
			"no events of type %s with an \"item\" property in %s: send interactions as events whose properties JSON has an item, e.g. {\"item\": \"sku-1\"}",
			strings.Join(types, ", "), c.db))
	}
	fmt.Fprintf(e.stdout, "Training %s on %d interaction events (%s)\n", c.name, len(inter), strings.Join(types, ", "))
	start := time.Now()
	m, card, err := als.Build(ctx, inter, als.BuildOptions{
		Options: als.Options{Factors: c.factors, Iterations: c.iters, Lambda: c.lambda, Alpha: c.alpha, Seed: c.seed, DP: dp},
		K:       c.k, Name: c.name, Version: c.version, Now: now.UTC(), EvaluateOnly: c.evaluateOnly,
		MaxMIAAUC: c.maxMIAAUC, ItemCategories: cats,
		TrainingData: fmt.Sprintf("events of type %s with an \"item\" property, from %s to %s (%s)",
			strings.Join(types, ", "), first.Format(time.RFC3339), last.Format(time.RFC3339), filepath.Base(c.db)),
	})
	if err != nil {
		return err
	}
	card.Data.From, card.Data.To = first, last
	path := filepath.Join(c.out, c.name+".safetensors")
	if err := m.Save(ctx, path); err != nil {
		return err
	}
	if err := card.Save(ctx, path); err != nil {
		return err
	}
	jsonPath, mdPath := scorer.CardPaths(path)
	ev := card.Evaluation
	fmt.Fprintf(e.stdout, "  users %d  items %d  interactions %d  (%s)\n", card.Data.Users, card.Data.Items, card.Data.Interactions, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "  held-out users %d: recall@%d %.4f  NDCG@%d %.4f   (most popular: %.4f / %.4f)\n",
		ev.Users, ev.K, ev.Recall, ev.K, ev.NDCG, ev.BaselineRecall, ev.BaselineNDCG)
	fmt.Fprintf(e.stdout, "  exposure Gini@%d %.3f, catalog coverage %.1f%%\n", card.Exposure.K, card.Exposure.Gini, 100*card.Exposure.Coverage)
	if p := card.Privacy; p != nil {
		fmt.Fprintf(e.stdout, "  differential privacy: (ε = %g, δ = %g) per user, noise σ %.4g; recall@%d %.4f against %.4f without noise\n",
			p.Epsilon, p.Delta, p.Sigma, ev.K, ev.Recall, p.NonPrivateRecall)
	}
	mi := card.Membership
	fmt.Fprintf(e.stdout, "  membership inference: attack AUC %.3f (95%% interval %.3f to %.3f) over %d trained-on and %d held-out users; gate %.2f\n",
		mi.AUC, mi.Low, mi.High, mi.Members, mi.NonMembers, mi.MaxAUC)
	if n := len(card.Fairness.ByCategory); n > 0 {
		fmt.Fprintf(e.stdout, "  item categories: %d (written to the model; exposure share by category on the card)\n", n)
	}
	fmt.Fprintf(e.stdout, "  model  %s\n  card   %s\n         %s\n", path, jsonPath, mdPath)
	if card.NotDeployable != "" {
		return experiment.E(op, experiment.Invalid, experiment.Field("--max-mia-auc"), experiment.Errorf(
			"%s. The model was written marked not deployable: lift serve refuses it unless started with --allow-undeployable", card.NotDeployable))
	}
	return nil
}

// readInteractions reads the interaction events of the store as ALS interactions
// (weight 1 per event), with the first and last event times. When cats is not
// nil it receives each item's category: the "category" property of the item's
// latest event that has one.
func readInteractions(ctx context.Context, db *store.DB, types []string, from, to time.Time, cats map[string]string) ([]als.Interaction, time.Time, time.Time, error) {
	var inter []als.Interaction
	var first, last time.Time
	_, err := db.ItemEvents(ctx, types, from, to, func(ev store.ItemEvent) error {
		if first.IsZero() {
			first = ev.TS.UTC()
		}
		last = ev.TS.UTC()
		inter = append(inter, als.Interaction{User: ev.Unit, Item: ev.Item, Weight: 1, Time: ev.TS})
		if cats != nil && ev.Category != "" {
			cats[ev.Item] = ev.Category
		}
		return nil
	})
	return inter, first, last, err
}

func parseTimeFlag(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, experiment.Errorf("want RFC 3339 or YYYY-MM-DD, got %q", v)
	}
	return t, nil
}

func runModelCard(ctx context.Context, e *env, args []string) error {
	fs := e.flags("model card", "--file MODEL.safetensors [--format markdown|json]", modelDescription)
	file := fs.String("file", "", "model `file` (its card NAME.card.json is read from beside it), or the card's .json file")
	format := fs.String("format", "markdown", "output format: markdown or json")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return experiment.E("model card", experiment.Invalid, experiment.Field("--file"), experiment.Errorf("required"))
	}
	jsonPath := *file
	if !strings.HasSuffix(jsonPath, ".json") {
		jsonPath, _ = scorer.CardPaths(*file)
	}
	card, err := scorer.LoadCard(ctx, jsonPath)
	if err != nil {
		return experiment.E("model card", experiment.KindOf(err), experiment.Field("--file"),
			experiment.Errorf("reading the card %s (written by lift model train beside the model): %v", jsonPath, err))
	}
	switch *format {
	case "markdown", "md":
		fmt.Fprint(e.stdout, card.Markdown())
	case "json":
		b, err := card.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	default:
		return experiment.E("model card", experiment.Invalid, experiment.Field("--format"), experiment.Errorf("must be markdown or json, got %q", *format))
	}
	return nil
}

// journeyFlags are the flags of "lift serve" that serve journeys.
type journeyFlags struct {
	models            string
	scorer            string
	scorerURL         string
	precision         string
	allowUndeployable bool
	watch             time.Duration
}

// addJourneyFlags declares --models, --scorer and --scorer-url on fs.
func addJourneyFlags(fs *flag.FlagSet) *journeyFlags {
	var jf journeyFlags
	fs.StringVar(&jf.models, "models", "", "`folder` of personalization models (NAME.safetensors with NAME.card.json) served by POST /v1/journeys/KEY/decide; empty: no journeys")
	fs.StringVar(&jf.scorer, "scorer", scorer.KindAuto, "scorer backend: auto (cuda when a GPU and the CUDA libraries are present, else cpu), cpu, cuda or remote")
	fs.StringVar(&jf.scorerURL, "scorer-url", "", "base `URL` of the Open Inference Protocol server for --scorer remote, e.g. http://triton:8000")
	fs.StringVar(&jf.precision, "scorer-precision", scorer.PrecisionF32, "what the cpu scorer scores in: f32, or f16 (item vectors in half precision: half the memory; see BENCHMARKS.md)")
	fs.BoolVar(&jf.allowUndeployable, "allow-undeployable", false, "serve models that failed a training gate (marked not deployable by lift model train)")
	fs.DurationVar(&jf.watch, "models-watch", 0, "poll the --models folder every `period` and reload a model whose file changed (0: only POST /v1/models/NAME/reload)")
	return &jf
}

// openJourneys loads the models of jf.models and returns the Decider for
// api.Options.Journeys, and a function that closes the Decider and the models;
// call it before closing db. Without --models it returns a nil Decider.
func openJourneys(ctx context.Context, db *store.DB, jf *journeyFlags, logger *slog.Logger) (*journey.Decider, func() error, error) {
	if jf == nil || jf.models == "" {
		return nil, func() error { return nil }, nil
	}
	sopt := scorer.DefaultOptions()
	sopt.Logger = logger
	sopt.URL = jf.scorerURL
	if p := jf.precision; p != "" && p != scorer.PrecisionF32 && p != scorer.PrecisionF16 {
		return nil, nil, experiment.E("serve", experiment.Invalid, experiment.Field("--scorer-precision"), experiment.Errorf(`must be "f32" or "f16", got %q`, jf.precision))
	}
	sopt.Precision = jf.precision
	ms, err := journey.LoadModels(ctx, jf.models, journey.LoadOptions{Kind: jf.scorer, Scorer: sopt, AllowUndeployable: jf.allowUndeployable})
	if err != nil {
		return nil, nil, err
	}
	for _, m := range ms.List() {
		logger.Info("model loaded", "name", m.Name, "version", m.Version(), "items", m.Model.NItems(), "dim", m.Model.Dim, "backend", m.Scorer.Name())
	}
	d := journey.New(db, ms, journey.Options{Logger: logger})
	stop := func() {}
	if jf.watch > 0 {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); ms.Watch(wctx, jf.watch, logger) }()
		stop = func() { cancel(); <-done }
	}
	return d, func() error { stop(); return errors.Join(d.Close(), ms.Close()) }, nil
}

// journeyRollupTask stores, every period, the daily guardrails of every journey
// for yesterday and today (UTC), so that journey_daily is current for the
// scheduled comparison.
func journeyRollupTask(db *store.DB, logger *slog.Logger, period time.Duration) backgroundTask {
	return backgroundTask{name: "journey guardrails roll-up", run: func(ctx context.Context) error {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			js, err := db.ListJourneys(ctx)
			if err != nil {
				logger.Warn("journey roll-up", "err", err)
				continue
			}
			today := time.Now().UTC().Truncate(24 * time.Hour)
			for _, j := range js {
				if _, err := journey.Rollup(ctx, db, j.Key, today.Add(-24*time.Hour), today.Add(24*time.Hour)); err != nil {
					logger.Warn("journey roll-up", "journey", j.Key, "err", err)
				}
			}
		}
	}}
}

// consentPurgeTask runs store.PurgeWithdrawn every period: attributes and item
// history sent for a unit after it withdrew the consent they need are removed
// within a period (docs/privacy.md#consent).
func consentPurgeTask(db *store.DB, logger *slog.Logger, period time.Duration) backgroundTask {
	return backgroundTask{name: "consent purge", run: func(ctx context.Context) error {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			p, err := db.PurgeWithdrawn(ctx)
			if err != nil {
				logger.Warn("consent purge", "err", err)
				continue
			}
			if p.Attributes+p.ItemHistory > 0 {
				logger.Info("consent purge", "attributes", p.Attributes, "item_history", p.ItemHistory)
			}
		}
	}}
}
