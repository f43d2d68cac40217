package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// env is what a subcommand may touch of the process: injected so tests run
// subcommands in-process with their own streams and environment.
type env struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one subcommand.
type command struct {
	name    string
	summary string // one line for "lift --help"
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists every subcommand; each lives in its own file.
func commands() []command {
	cmds := []command{
		{"serve", "run the HTTP API server (the one writer of the DuckDB file)", runServe},
		{"demo", "simulate an experiment end to end on a fresh DuckDB file and print the results", runDemo},
		{"version", "print the version", runVersion},
		{"analyze", "analyze an experiment from a CSV or Parquet file with one row per unit", runAnalyze},
		{"ingest", "bulk-load outcome events from CSV, Parquet or NDJSON", runIngest},
		{"gen", "generate synthetic exposures and events for benchmarks and demos", runGen},
		{"did", "difference-in-differences on a panel file", runDiD},
		{"geo", "synthetic control for a geo experiment on a panel file", runGeo},
		{"power", "sample size, power, minimum detectable effect and duration of a planned test", runPower},
		{"uplift", "fit and evaluate an uplift model on a file", runUplift},
		{"segments", "break an effect down by a unit attribute, with post-stratification, on a file", runSegments},
		{"quantiles", "compare quantiles (p50, p90, p99) of a per-unit value between two arms, on a file", runQuantiles},
		{"report", "write an experiment report (HTML, Markdown, charts, CSV) to a folder", runReport},
		{"metrics", "define, change (new versions), deprecate and delete metrics on a running server", runMetrics},
		{"model", "train and inspect personalization models (lift model train|card)", runModel},
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

// errUsage marks an error that was already explained by a usage message.
var errUsage = errors.New("usage")

func run(ctx context.Context, e *env) int {
	if len(e.args) == 0 || e.args[0] == "-h" || e.args[0] == "--help" || e.args[0] == "help" {
		usage(e.stdout)
		if len(e.args) == 0 {
			return 2
		}
		return 0
	}
	name := e.args[0]
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, e.args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(e.stderr, "lift %s: %s\n", name, errorText(err))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "lift: unknown command %q\n\n", name)
	usage(e.stderr)
	return 2
}

func errorText(err error) string {
	var le *experiment.Error
	if errors.As(err, &le) {
		return le.Message()
	}
	return err.Error()
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Lift: experimentation and incrementality platform.\n\nUsage: lift COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"lift COMMAND --help\" for the flags of a command.\n")
}

// flags returns a FlagSet for a subcommand whose --help prints the synopsis, the
// description and every flag with its default.
func (e *env) flags(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("lift "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: lift %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, printing help to stdout for --help, and maps errors to errUsage.
func (e *env) parse(fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "lift: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// lookupEnv reads an environment variable through the injected getenv.
func (e *env) lookupEnv(k string) string {
	if e.getenv == nil {
		return os.Getenv(k)
	}
	return e.getenv(k)
}
