package bug

import (
	"fmt"
	"strings"
	"testing"
)

func panicky() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Recovered("testing", r)
		}
	}()
	var m map[string]int
	m["x"] = 1 // assignment to entry in nil map
	return nil
}

func TestRecoveredCarriesThePanicAndItsStack(t *testing.T) {
	err := fmt.Errorf("batch: %w", panicky())
	p, ok := As(err)
	if !ok {
		t.Fatalf("no Panic in %v", err)
	}
	if got := p.Error(); !strings.HasPrefix(got, "internal error while testing: ") || !strings.Contains(got, "nil map") {
		t.Errorf("message %q", got)
	}
	if !strings.Contains(string(p.Stack), "bug.panicky") {
		t.Errorf("stack does not name the panicking function:\n%s", p.Stack)
	}
	if _, ok := As(fmt.Errorf("plain")); ok {
		t.Error("a plain error taken for a panic")
	}
}
