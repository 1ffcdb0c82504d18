package connectortest_test

import (
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/connectors/connectortest"
	"github.com/hookline/hookline/connectors/verify"
	"github.com/hookline/hookline/mapping"
)

// FuzzConnectorMap feeds arbitrary bodies (as JSON and as form posts, with
// the event-kind query parameters the connectors read) through the mapping,
// dedupe and handshake of every shipped connector: none may panic, and an
// event must never come out without a type, an entity and a reference.
func FuzzConnectorMap(f *testing.F) {
	// Each connector with the distinct queries its cases use, plus none.
	type target struct {
		c       *connectors.Connector
		queries []url.Values
	}
	var targets []target
	for _, s := range catalogue() {
		tg := target{c: connectortest.Load(f, s.ConfigPath, s.Env), queries: []url.Values{{}}}
		seen := map[string]bool{}
		for _, tc := range s.Cases {
			body, err := os.ReadFile(tc.Payload)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body)
			if tc.Query != "" && !seen[tc.Query] {
				seen[tc.Query] = true
				q, err := url.ParseQuery(tc.Query)
				if err != nil {
					f.Fatal(err)
				}
				tg.queries = append(tg.queries, q)
			}
		}
		targets = append(targets, tg)
	}
	for _, seed := range []string{"", "{}", "[]", "null", `{"type":"event_callback","event":{"type":"message"}}`, "a=%zz", `{"payload":{"status":"x"}}`, "event=ticket_idle"} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{"Content-Type": {"application/json"}}
		for _, tg := range targets {
			c, in := tg.c, tg.c.Inbound
			if in == nil {
				continue
			}
			inputs := [][]byte{body}
			if js, _, err := verify.DecodeForm(body); err == nil {
				inputs = append(inputs, js)
			}
			for _, payload := range inputs {
				for _, q := range tg.queries {
					events, err := in.Mapper.Map(mapping.Input{Body: payload, Header: h, Query: q, ReceivedAt: now})
					if err != nil {
						continue
					}
					for _, e := range events {
						if e.Type == "" || e.Entity == "" || e.Reference == "" {
							t.Fatalf("%s: event without type, entity or reference: %+v", c.Name, e)
						}
					}
				}
				_ = in.Dedupe.Key(h, payload)
			}
			_, _ = in.Handshake(&verify.Request{Method: http.MethodPost, URL: "https://h.example/hooks/" + c.Name, Header: h, Body: body, Now: now})
		}
	})
}
