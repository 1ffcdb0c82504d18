package mapping

import (
	"path/filepath"
	"strings"
	"testing"
)

// Every template of the shipped connectors runs from a compiled plan: a
// construct the plan does not support would silently fall back to
// text/template's reflection on every webhook. (That both paths render the
// same is held by the goldens and by yamlconf's differential tests.)
func TestShippedTemplatesArePlanned(t *testing.T) {
	files, err := filepath.Glob("../configs/connectors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped connectors: %v", err)
	}
	total := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		m := connectorMapper(t, name)
		total += len(m.tmpls)
		if bad := m.unplanned(); len(bad) > 0 {
			t.Errorf("%s: templates without a plan:\n  %s", name, strings.Join(bad, "\n  "))
		}
	}
	if total == 0 {
		t.Fatal("the shipped connectors have no templates at all: the test checks nothing")
	}
	t.Logf("%d templates in %d connectors, all planned", total, len(files))
}
