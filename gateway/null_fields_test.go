package gateway

import (
	"fmt"
	"testing"
	"time"
)

// nullEntity reads an entity through the admin API (nil when 404).
func nullEntity(t *testing.T, base, conn, ent, ref string) map[string]any {
	t.Helper()
	r := do(t, "GET", base+"/api/v1/entities/"+conn+"/"+ent+"/"+ref, nil, nil)
	if r.Status == 404 {
		return nil
	}
	if r.Status != 200 {
		t.Fatalf("entity: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["entity"].(map[string]any)
}

// nullWaitVersion waits until the entity's snapshot reached version v.
func nullWaitVersion(t *testing.T, base, conn, ent, ref string, v int) map[string]any {
	t.Helper()
	var e map[string]any
	waitFor(t, fmt.Sprintf("entity version %d", v), func() bool {
		e = nullEntity(t, base, conn, ent, ref)
		return e != nil && int(e["version"].(float64)) >= v
	})
	return e
}

// A platform's "owner": null (Zapier, Make and scripts report an
// unassigned ticket so) clears the snapshot's owner, and custom.owner of
// the generic connector's flattening with it: a rule on an absent owner
// fires.
func TestNullFromPlatformClearsSnapshotField(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: triage-unassigned
    on: [ticket.updated]
    connector: generic
    when: { field: owner, absent: true }
    then: [ { set_owner: triage } ]
`)
	clock := newFakeClock(time.Date(2026, 1, 5, 10, 10, 0, 0, time.UTC))
	gw, _ := runServer(t, cfg, t.TempDir(), env, clock.now)
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"T9","status":"open","owner":"alice","occurred_at":"2026-01-05T10:00:00Z"}`)
	nullWaitVersion(t, gw.URL, "generic", "ticket", "T9", 1)
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"T9","status":"open","owner":null,"occurred_at":"2026-01-05T10:05:00Z"}`)
	e := nullWaitVersion(t, gw.URL, "generic", "ticket", "T9", 2)
	f := e["fields"].(map[string]any)
	for _, name := range []string{"owner", "custom.owner"} {
		if v, has := f[name]; has && v != nil {
			t.Errorf("%s = %v after the platform posted owner: null, want cleared", name, v)
		}
	}
	waitFor(t, "the triage update", func() bool { return len(target.requests()) >= 1 })
	time.Sleep(200 * time.Millisecond)
	if n := len(target.requests()); n != 1 {
		t.Errorf("rule triage-unassigned sent %d updates, want 1 (the ticket is unassigned)", n)
	}
}

// After "owner": null, a rule's set_owner to the former owner changes
// the ticket: it is not dropped as a no-op.
func TestNullFromPlatformSetOwnerIsNotNoOp(t *testing.T) {
	target := newRecorder(t, nil)
	env := map[string]string{"GENERIC_TARGET_URL": target.srv.URL}
	cfg := timerConfig(t, `rules:
  - id: back-to-alice
    on: [ticket.updated]
    connector: generic
    when: { field: status, is: pending }
    then: [ { set_owner: alice } ]
`)
	clock := newFakeClock(time.Date(2026, 1, 5, 10, 10, 0, 0, time.UTC))
	gw, _ := runServer(t, cfg, t.TempDir(), env, clock.now)
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"T10","status":"open","owner":"alice","occurred_at":"2026-01-05T10:00:00Z"}`)
	nullWaitVersion(t, gw.URL, "generic", "ticket", "T10", 1)
	postGeneric(t, gw.URL, `{"type":"ticket.updated","id":"T10","status":"pending","owner":null,"occurred_at":"2026-01-05T10:05:00Z"}`)
	nullWaitVersion(t, gw.URL, "generic", "ticket", "T10", 2)
	time.Sleep(300 * time.Millisecond)
	if n := len(target.requests()); n != 1 {
		t.Errorf("rule back-to-alice sent %d updates, want 1 (the ticket is unassigned, set_owner: alice changes it)", n)
	}
}
