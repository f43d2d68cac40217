package main

import (
	"context"
	"errors"
)

// runDiD is a placeholder until the did command lands.
func runDiD(ctx context.Context, e *env, args []string) error {
	return errors.New("not implemented yet")
}
