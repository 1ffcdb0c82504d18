package mapping

import (
	"os"
	"testing"
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
	b.ReportAllocs()
	b.SetBytes(int64(len(in.Body)))
	for b.Loop() {
		evs, err := m.Map(in)
		if err != nil || len(evs) != 1 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}
