package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

const healthDescription = `Health checks from a DuckDB file, as the API computes them (the same
pipelines, the same JSON):

  --experiment KEY             GET /v1/experiments/KEY/health: the anytime-valid
                               sequential SRM over the daily looks (Lindon & Malek
                               2022), the one-shot chi-square, and the pre-exposure
                               balance of every CUPED covariate
  --experiment KEY --overlaps  GET /v1/experiments/KEY/overlaps: experiments of other
                               layers sharing units and metrics, and their
                               interaction tests
  --holdout NAME [--version V] GET /v1/holdouts/NAME/health: the cohort's share
                               and its drift, contamination and age

Nothing is stored. The file must not be held by a running "lift serve"; ask the
server for those routes instead. With --engine clickhouse the metrics are
computed by ClickHouse, after the rows the file has committed are forwarded to it.`

// runAnalyzeHealth is "lift analyze health".
func runAnalyzeHealth(ctx context.Context, e *env, args []string) error {
	const op = "lift analyze health"
	fs := e.flags("analyze health", "--db PATH (--experiment KEY [--overlaps] | --holdout NAME [--version V])", healthDescription)
	db := fs.String("db", "", "DuckDB file (required)")
	key := fs.String("experiment", "", "experiment key")
	holdout := fs.String("holdout", "", "holdout name")
	version := fs.Int("version", 0, "with --holdout: the version (cohort); default the current one")
	overlaps := fs.Bool("overlaps", false, "with --experiment: the overlaps with experiments of other layers and their interaction tests")
	var ef engineFlags
	ef.register(fs)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *db == "":
		return experiment.E(op, experiment.Invalid, experiment.Field("--db"), experiment.Errorf("is required"))
	case (*key == "") == (*holdout == ""):
		return experiment.E(op, experiment.Invalid, experiment.Field("--experiment"), experiment.Errorf("give --experiment KEY or --holdout NAME, one of them"))
	case *overlaps && *key == "":
		return experiment.E(op, experiment.Invalid, experiment.Field("--overlaps"), experiment.Errorf("needs --experiment"))
	case *version != 0 && *holdout == "":
		return experiment.E(op, experiment.Invalid, experiment.Field("--version"), experiment.Errorf("needs --holdout"))
	case *version < 0:
		return experiment.E(op, experiment.Invalid, experiment.Field("--version"), experiment.Errorf("must be at least 1, got %d", *version))
	}
	opt := store.DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	sdb, err := store.Open(ctx, *db, opt)
	if err != nil {
		return err
	}
	defer sdb.Close()
	rs, wh, err := ef.open(ctx, op, sdb, opt.Logger)
	if err != nil {
		return err
	}
	defer wh.Close()
	if wh != nil {
		if _, _, err := wh.forwarder.Sync(ctx); err != nil {
			return experiment.E(op, experiment.Field("--clickhouse"), err)
		}
	}
	var out any
	switch {
	case *holdout != "":
		out, err = rs.HoldoutHealth(ctx, *holdout, *version)
	case *overlaps:
		out, err = rs.ExperimentOverlaps(ctx, *key)
	default:
		out, err = rs.ExperimentHealth(ctx, *key)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
