package gateway

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// Tags compare case-insensitively in the no-op check, as includes does in
// conditions: a removal in another case is sent in the platform's spelling,
// an addition of a tag the entity has in another case is a no-op.
func TestDropNoOpsFoldsTagCase(t *testing.T) {
	cases := []struct {
		name            string
		tags            []string
		add, remove     []string
		wantAdd, wantRm []string
		noOp            bool
	}{
		{name: "remove in another case", tags: []string{"VIP", "billing"}, remove: []string{"vip"}, wantRm: []string{"VIP"}},
		{name: "remove absent tag", tags: []string{"billing"}, remove: []string{"vip"}, noOp: true},
		{name: "add in another case", tags: []string{"VIP"}, add: []string{"vip"}, noOp: true},
		{name: "add new, remove mixed", tags: []string{"Refund"}, add: []string{"done"}, remove: []string{"REFUND", "spam"}, wantAdd: []string{"done"}, wantRm: []string{"Refund"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &event.Update{Kind: event.KindUpdateEntity, AddTags: slices.Clone(tc.add), RemoveTags: slices.Clone(tc.remove)}
			target := &event.Snapshot{Fields: map[string]any{event.FieldTags: tc.tags}}
			if got := dropNoOps(u, target); got != tc.noOp {
				t.Fatalf("no-op = %v, want %v (%+v)", got, tc.noOp, u)
			}
			if !tc.noOp && (!slices.Equal(u.AddTags, tc.wantAdd) || !slices.Equal(u.RemoveTags, tc.wantRm)) {
				t.Errorf("add %v remove %v, want add %v remove %v", u.AddTags, u.RemoveTags, tc.wantAdd, tc.wantRm)
			}
		})
	}
}

// The dry run of a rule whose includes matched a tag in another case
// removes it.
func TestRemoveTagsInAnotherCaseIsSent(t *testing.T) {
	dir := copyConfigs(t)
	writeFile(t, filepath.Join(dir, "rules", "untag.yaml"), `rules:
  - id: untag-vip
    on: [ticket.updated]
    connector: zendesk
    when: { field: tags, includes: vip }
    then:
      - remove_tags: vip
`)
	b, errs := Load(dir, testEnv(nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	res, err := Simulate(b, SimRequest{Connector: "zendesk", Event: &event.Event{Type: "ticket.updated", Entity: "ticket", Reference: "9",
		Fields: map[string]any{"tags": []string{"VIP", "billing"}, "status": "open"}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || !slices.Equal(res.Actions[0].RemoveTags, []string{"VIP"}) {
		t.Fatalf("matched %v, actions %+v, suppressed %v", res.Matched, res.Actions, res.Suppressed)
	}
}
