package main

import (
	"context"
	"errors"
)

// runUplift is a placeholder until the uplift command lands.
func runUplift(ctx context.Context, e *env, args []string) error {
	return errors.New("not implemented yet")
}
