package main

import (
	"context"
	"errors"
)

// runModel is a placeholder until the model command lands.
func runModel(ctx context.Context, e *env, args []string) error {
	return errors.New("not implemented yet")
}
