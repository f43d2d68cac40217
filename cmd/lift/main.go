// Command lift is Lift's one binary: the server, the demo, and the analyst tools.
// Run "lift --help" for the list of subcommands and "lift CMD --help" for the flags
// of each. main only wires the process (arguments, standard streams, signals) and
// exits with the code the subcommand returns.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	privateFiles()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{args: os.Args[1:], stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}
