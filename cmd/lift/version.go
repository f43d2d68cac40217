package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// codeVersion is the version string recorded in result snapshots.
func codeVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flags("version", "", "Print Lift's version and the Go runtime it was built with.")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "lift %s (%s, %s/%s)\n", codeVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
