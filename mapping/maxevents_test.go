package mapping

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// messagesPayload is a WhatsApp-like payload holding n messages, one of
// every ten of them a reaction.
func messagesPayload(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"object":"whatsapp_business_account","messages":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		typ := "text"
		if i%10 == 9 {
			typ = "reaction"
		}
		fmt.Fprintf(&b, `{"id":"m%d","type":%q,"text":{"body":"hello %d"}}`, i, typ, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

const messagesMapping = `
- name: messages
  each: messages
  where: { path: type, not_in: [reaction] }
  type: message.received
  entity: message
  reference: id
  fields: { text: text.body }
- name: count
  match: { path: object, exists: true }
  type: batch.received
  entity: batch
  reference: { value: b }
`

// TestMaxEvents: a payload mapping to more events than the cap fails as a
// whole with the count and the cap, never truncated; elements dropped by
// where do not count; every entry's events count.
func TestMaxEvents(t *testing.T) {
	tests := []struct {
		name      string
		cap       int // 0: the default
		messages  int
		wantCount int // events mapped, or the count named in the error
		wantErr   bool
	}{
		{"default cap, under", 0, 1000, 901, false},
		{"default cap, exactly", 0, 1110, 1000, false},
		{"default cap, one over", 0, 1111, 1001, true},
		{"default cap, far over", 0, 20000, 18001, true},
		{"set cap, exactly", 6, 5, 6, false},
		{"set cap, where drops the excess", 10, 10, 10, false},
		{"set cap, over", 9, 11, 11, true},
		{"raised cap", 5000, 5000, 4501, false},
	}
	base := mustCompile(t, messagesMapping)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			if tt.cap > 0 {
				m = base.WithMaxEvents(tt.cap)
			}
			evs, err := m.Map(Input{Body: messagesPayload(tt.messages), ReceivedAt: receivedAt})
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Map: %v", err)
				}
				if len(evs) != tt.wantCount {
					t.Fatalf("%d events, want %d", len(evs), tt.wantCount)
				}
				return
			}
			wantCap := m.MaxEvents()
			want := fmt.Sprintf("mapping: too many events in one payload: the payload maps to %d events, more than the cap of %d (inbound.max_events of connector conn); nothing was mapped", tt.wantCount, wantCap)
			if !errors.Is(err, ErrTooManyEvents) || err.Error() != want || evs != nil {
				t.Fatalf("Map = %d events, %v\nwant the error %q", len(evs), err, want)
			}
		})
	}
	if base.MaxEvents() != DefaultMaxEvents || base.WithMaxEvents(0).MaxEvents() != DefaultMaxEvents || base.WithMaxEvents(7).MaxEvents() != 7 {
		t.Errorf("MaxEvents: default %d, WithMaxEvents(0) %d, WithMaxEvents(7) %d", base.MaxEvents(), base.WithMaxEvents(0).MaxEvents(), base.WithMaxEvents(7).MaxEvents())
	}
	if base.WithMaxEvents(7); base.MaxEvents() != DefaultMaxEvents {
		t.Error("WithMaxEvents changed the mapper it was called on")
	}
}
