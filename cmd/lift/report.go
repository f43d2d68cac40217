package main

import (
	"context"
	"errors"
)

// runReport is a placeholder until the report command lands.
func runReport(ctx context.Context, e *env, args []string) error {
	return errors.New("not implemented yet")
}
