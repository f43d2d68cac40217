package privacy_test

import (
	"testing"

	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/privacy/privacytest"
)

// TestLedgerConcurrentNoOverspend: 64 goroutines race to spend 0.03 each, 10 times,
// from a budget of 1: exactly 33 spends succeed and ε spent never exceeds 1.
func TestLedgerConcurrentNoOverspend(t *testing.T) {
	privacytest.ConcurrentSpendCheck(t, privacy.NewMemoryLedger(nil))
}

// TestLedgerConcurrentRelease: 50 callers of one period get one release, one spend.
func TestLedgerConcurrentRelease(t *testing.T) {
	privacytest.ConcurrentReleaseCheck(t, privacy.NewMemoryLedger(nil), privacy.ExperimentScope("race"))
}
