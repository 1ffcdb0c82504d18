package mapping

import (
	"testing"
	"time"
)

// In a path list (or before a fallback) an occurred_at of zero or below is
// "not set": the next path is tried, as after an empty value.
func TestOccurredAtSkipsUnsetTimes(t *testing.T) {
	created := time.Unix(1717236000, 0).UTC()
	tests := []struct {
		name, spec, body string
		want             time.Time
	}{
		{"zero then a time", `{ path: [updated_at, created_at] }`, `{"updated_at":0,"created_at":1717236000}`, created},
		{"zero text then a time", `{ path: [updated_at, created_at] }`, `{"updated_at":"0","created_at":1717236000}`, created},
		{"negative then a time", `{ path: [updated_at, created_at] }`, `{"updated_at":-1,"created_at":1717236000}`, created},
		{"a time first", `{ path: [updated_at, created_at] }`, `{"updated_at":1717236060,"created_at":1717236000}`, created.Add(time.Minute)},
		{"all zero", `{ path: [updated_at, created_at] }`, `{"updated_at":0,"created_at":0}`, receivedAt},
		{"zero before a fallback", `{ path: updated_at, fallback: { path: created_at } }`, `{"updated_at":0,"created_at":1717236000}`, created},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, "- type: t.x\n  entity: e\n  reference: { value: r }\n  occurred_at: "+tc.spec+"\n")
			evs := mustMap(t, m, Input{Body: []byte(tc.body)})
			if got := evs[0].OccurredAt; !got.Equal(tc.want) {
				t.Errorf("occurred_at = %v, want %v", got, tc.want)
			}
		})
	}
}
