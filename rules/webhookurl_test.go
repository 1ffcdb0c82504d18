package rules

import (
	"strings"
	"testing"
)

// webhookRule is a rule whose one action is a call_webhook to url; the url
// value sits at rules.yaml:5:30.
func webhookRule(url string) string {
	return actRule("", "      - call_webhook: { url: '"+url+"' }\n")
}

func TestWebhookURLTemplateInHostRefused(t *testing.T) {
	cases := []struct{ name, url, want string }{
		{"whole URL", `%%CALLBACK_URL%%`, `rules.yaml:5:30: call_webhook.url: %%CALLBACK_URL%% renders into the URL's scheme or host`},
		{"whole URL action", `{{ .Field "callback" }}/x`, `{{ .Field "callback" }} renders into the URL's scheme or host`},
		{"host", `https://{{ .Var "HOST" }}/x`, `{{ .Var "HOST" }} renders into the URL's scheme or host`},
		{"host suffix", `https://ops.example.com{{ .Event.Reference }}`, `{{ .Event.Reference }} renders into the URL's scheme or host`},
		{"escaped still in host", `https://{{ .Event.Reference | pathescape }}.example.com/`, `renders into the URL's scheme or host`},
		{"port", `https://ops.example.com:{{ .Fields.port }}/x`, `{{ .Fields.port }} renders into the URL's scheme or host`},
		{"user info", `https://{{ .Fields.user }}@ops.example.com/x`, `{{ .Fields.user }} renders into the URL's scheme or host`},
		// The template's structure decides, not its text: a comment holding
		// "}}" and a called template cannot hide a value in the host.
		{"behind a comment", `https://x{{/* }}/{{ */}}{{ .Fields.host }}`, `{{ .Fields.host }} renders into the URL's scheme or host`},
		{"through a called template", `https://{{ template "h" . }}/x/{{ define "h" }}{{ .Fields.host }}{{ end }}`, `{{ template "h" . }} renders into the URL's scheme or host`},
		{"in a branch", `https://{{ if .Fields.x }}{{ .Fields.host }}{{ end }}.example.com/`, `{{ .Fields.host }} renders into the URL's scheme or host`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustContain(t, compileFails(t, webhookRule(tc.url), Options{}), tc.want)
		})
	}
}

func TestWebhookURLTemplateEscapes(t *testing.T) {
	cases := []struct {
		name, url string
		warn      string // "" when the URL is accepted without a warning
	}{
		{"literal", `https://ops.example.com/t/x?y=1`, ""},
		{"path escaped", `https://ops.example.com/t/{{ .Event.Reference | pathescape }}`, ""},
		{"path escaped, call form", `https://ops.example.com/t/{{ pathescape .Event.Reference }}/x`, ""},
		{"query escaped", `https://ops.example.com/t?ref={{ .Event.Reference | queryescape }}&p={{ .Fields.priority | queryescape }}`, ""},
		{"fragment", `https://ops.example.com/t#{{ .Event.Reference }}`, ""},
		{"control actions print nothing", `https://ops.example.com/t/{{ if .Fields.x }}{{ .Fields.x | pathescape }}{{ else }}none{{ end }}`, ""},
		{"a host chosen between fixed names", `https://{{ if .Fields.eu }}eu{{ else }}us{{ end }}.ops.example.com/t/{{ .Event.Reference | pathescape }}`, ""},
		{"a declaration prints nothing", `https://ops.example.com/{{ $r := .Event.Reference }}t/{{ $r | pathescape }}`, ""},
		{"path unescaped", `https://ops.example.com/t/{{ .Event.Reference }}`,
			`rules.yaml:5:30: call_webhook.url: {{ .Event.Reference }} renders into the path unescaped`},
		{"path variable", `https://ops.example.com/t/%%TICKET_REFERENCE%%`, `%%TICKET_REFERENCE%% renders into the path unescaped`},
		{"path escaped then changed", `https://ops.example.com/t/{{ .Event.Reference | pathescape | lower }}`, `renders into the path unescaped`},
		{"query escape in the path", `https://ops.example.com/t/{{ .Event.Reference | queryescape }}`, `renders into the path unescaped`},
		{"query unescaped", `https://ops.example.com/t?ref={{ .Event.Reference }}`, `{{ .Event.Reference }} renders into the query unescaped`},
		{"path escape in the query", `https://ops.example.com/t?ref={{ .Event.Reference | pathescape }}`, `renders into the query unescaped`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, webhookRule(tc.url), Options{})
			got := s.Warnings().Error()
			if tc.warn == "" {
				if len(s.Warnings()) > 0 {
					t.Errorf("unexpected warnings: %s", got)
				}
				return
			}
			if !strings.Contains(got, tc.warn) {
				t.Errorf("warnings = %q, want one containing %q", got, tc.warn)
			}
		})
	}
}

// The escape functions keep a value in its URL part, whatever it holds.
func TestWebhookURLEscapeFunctions(t *testing.T) {
	src := actRule("", "      - call_webhook: { url: 'https://ops.example.com/t/{{ .Event.Reference | pathescape }}?q={{ .Fields.q | queryescape }}' }\n")
	cases := []struct{ ref, q, want string }{
		{"../admin/users?role=owner&delete=all#x", "a&b=c d#e", "https://ops.example.com/t/..%2Fadmin%2Fusers%3Frole=owner&delete=all%23x?q=a%26b%3Dc+d%23e"},
		{"..", "", "https://ops.example.com/t/%2E%2E?q="},
		{".", "ü", "https://ops.example.com/t/%2E?q=%C3%BC"},
		{"a.b", "1", "https://ops.example.com/t/a.b?q=1"},
	}
	for _, tc := range cases {
		ev := mkEvent("ticket.updated", map[string]any{"q": tc.q})
		ev.Reference = tc.ref
		res := fire(t, src, Options{}, ev, nil)
		if len(res.Errors) > 0 || len(res.Updates) != 1 {
			t.Fatalf("reference %q: %+v", tc.ref, res)
		}
		if got := res.Updates[0].Webhook.URL; got != tc.want {
			t.Errorf("reference %q: URL %q, want %q", tc.ref, got, tc.want)
		}
	}
}
