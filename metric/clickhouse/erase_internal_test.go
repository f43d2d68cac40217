package clickhouse

import (
	"errors"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// TestScrub: an error that quotes erased ids loses them and keeps its kind;
// one that does not is returned as it is.
func TestScrub(t *testing.T) {
	ids := []string{"alice@example.com", "erased_00ff"}
	err := wrap("erase", errors.New("code: 62, Syntax error at ('alice@example.com', 'erased_00ff')"))
	got := scrub(err, ids)
	if msg := got.Error(); strings.Contains(msg, ids[0]) || strings.Contains(msg, ids[1]) || !strings.Contains(msg, "Syntax error at ('(erased id)', '(erased id)')") {
		t.Errorf("scrubbed: %q", msg)
	}
	if experiment.KindOf(got) != experiment.Internal {
		t.Errorf("kind %v, want internal", experiment.KindOf(got))
	}
	plain := errors.New("connection refused")
	if scrub(plain, ids) != plain || scrub(nil, ids) != nil {
		t.Error("an error without ids changed")
	}
}
