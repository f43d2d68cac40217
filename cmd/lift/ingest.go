package main

import (
	"context"
	"errors"
)

// runIngest is a placeholder until the ingest command lands.
func runIngest(ctx context.Context, e *env, args []string) error {
	return errors.New("not implemented yet")
}
