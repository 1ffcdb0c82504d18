package mapping

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
)

// BenchmarkMap maps Meta's WhatsApp text-message sample with the mapping of
// testdata/whatsapp-text.txt (two entries, three each levels, a template,
// vars with the %%NAME%% shorthand).
func BenchmarkMap(b *testing.B) {
	src, err := os.ReadFile("testdata/whatsapp-text.txt")
	if err != nil {
		b.Fatal(err)
	}
	g := parseGolden(string(src))
	mapping, _ := g.get("mapping.yaml")
	m := mustCompile(b, mapping)
	in := Input{
		Body:       readFixture(b, "whatsapp-cloud-text-message.json"),
		Header:     map[string][]string{"X-Hub-Signature-256": {"sha256=x"}},
		ReceivedAt: receivedAt,
	}
	benchMap(b, m, in)
}

// benchTicketUpdate is the load generator's body (bench/load): a ticket
// update as Zapier or an in-house tool posts it to the generic connector.
const benchTicketUpdate = `{"type":"ticket.updated","id":"run-1","status":"open","priority":"high","subject":"Order 4711 has not arrived yet",` +
	`"text":"Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the parcel is at the depot. Could you check what happened?",` +
	`"tags":["shipping","vip"],"group":"support-tier-1","owner":"agent-17","channel":"email",` +
	`"customer":{"name":"Ana Ruiz","email":"ana.ruiz@example.com","phone":"+34600111222"},` +
	`"actor":{"type":"customer","id":"cust-5521","name":"Ana Ruiz"},` +
	`"order_id":"4711","occurred_at":"2026-03-02T09:15:00Z"}`

// connectorMapper compiles the inbound.events of a shipped connector file
// (configs/connectors/<name>.yaml), with no environment.
func connectorMapper(t testing.TB, name string) *Mapper {
	t.Helper()
	file := "../configs/connectors/" + name + ".yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	root, perrs := yamlconf.Parse(file, data, yamlconf.NoEnv)
	if len(perrs) > 0 {
		t.Fatalf("parse: %v", perrs)
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	m, errs := Compile(file, name, yamlconf.Lookup(yamlconf.Lookup(root, "inbound"), "events"))
	if len(errs) > 0 {
		t.Fatalf("compile %s:\n%v", file, errs)
	}
	return m
}

// BenchmarkMapGeneric maps the load generator's ticket update with the
// shipped generic connector (the whole-path benchmark's mapping).
func BenchmarkMapGeneric(b *testing.B) {
	m := connectorMapper(b, "generic")
	in := Input{
		Body:       []byte(benchTicketUpdate),
		Header:     map[string][]string{"Content-Type": {"application/json"}},
		ReceivedAt: receivedAt,
	}
	benchMap(b, m, in)
}

// benchMap maps in with m in a loop; every run must give one event.
func benchMap(b *testing.B, m *Mapper, in Input) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(in.Body)))
	for b.Loop() {
		evs, err := m.Map(in)
		if err != nil || len(evs) != 1 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}
