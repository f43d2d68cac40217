//go:build !linux

package assign_test

import "testing"

// cpuPerOp reports CPU time per operation on Linux only.
func cpuPerOp(b *testing.B) (stop func()) { return func() {} }
