package mapping

import (
	"strings"
	"testing"
)

// An actor type the payload decides (a path, a template, a map a payload
// picks from) must be one of the model's; gateway, which marks Hookline's
// own changes (rules skip them), only ever comes from a constant.
func TestActorTypeFromPayload(t *testing.T) {
	tests := []struct {
		name, spec, body string
		want             string
		warning          string // "" : none
	}{
		{"path agent", `{ path: [author.kind], default: customer }`, `{"author":{"kind":"agent"}}`, "agent", ""},
		{"path gateway", `{ path: [author.kind], default: customer }`, `{"author":{"kind":"gateway"}}`, "", `the payload gave actor type "gateway"`},
		{"plain path gateway", `{ path: author.kind }`, `{"author":{"kind":"gateway"}}`, "", `the payload gave actor type "gateway"`},
		{"template gateway", `'{{ .Path "author.kind" }}'`, `{"author":{"kind":"gateway"}}`, "", `the payload gave actor type "gateway"`},
		{"unknown value", `{ path: author.kind }`, `{"author":{"kind":"robot"}}`, "", `"robot" is not an actor type`},
		{"absent", `{ path: author.kind }`, `{}`, "", ""},
		{"constant gateway", `gateway`, `{"author":{"kind":"agent"}}`, "gateway", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, "- type: t.x\n  entity: e\n  reference: { value: r }\n  actor:\n    type: "+tc.spec+"\n")
			evs, warns, err := m.MapWithWarnings(Input{Body: []byte(tc.body), ReceivedAt: receivedAt})
			if err != nil {
				t.Fatal(err)
			}
			if got := evs[0].Actor.Type; got != tc.want {
				t.Errorf("actor type %q, want %q", got, tc.want)
			}
			switch {
			case tc.warning == "" && len(warns) > 0:
				t.Errorf("warnings %v, want none", warns)
			case tc.warning != "" && (len(warns) != 1 || !strings.Contains(warns[0].Message, tc.warning)):
				t.Errorf("warnings %v, want one with %q", warns, tc.warning)
			}
		})
	}
}
