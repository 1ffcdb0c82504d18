package delivery

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/store"
)

// slackLike returns a test connector whose "post" action succeeds on HTTP
// 200 only when the JSON answer says ok: true, retrying Slack's temporary
// error codes.
func slackLike(base string) *connectors.Outbound {
	out := outbound("slack", base)
	out.Actions["post"] = &connectors.Action{Name: "post", Method: "POST", Success: []int{200},
		SuccessWhen: &connectors.SuccessWhen{Path: "ok", Equals: true, ErrorPath: "error",
			RetryErrors: []string{"ratelimited", "internal_error", "service_unavailable"}}}
	return out
}

func postDelivery(base, ref string) *store.Delivery {
	d := httpDelivery("slack", ref, base+"/chat.postMessage", `{"channel":"C1","text":"hi"}`)
	d.Action = "post"
	return d
}

// TestSuccessWhenBody: real requests to a loopback target answering HTTP
// 200 with Slack-style bodies.
func TestSuccessWhenBody(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("x", 6000) // beyond what an attempt keeps: the whole body is read
	tests := []struct {
		name       string
		bodies     []string // answer n (the last one repeats)
		wantState  string
		wantReason string
		attempts   int
	}{
		{"ok false is dead at once", []string{`{"ok":false,"error":"channel_not_found"}`},
			store.DeliveryFailed, "response ok is false: error channel_not_found", 1},
		{"ok true succeeds", []string{`{"ok":true,"ts":"1700000000.000100"}`}, store.DeliverySucceeded, "", 1},
		{"ok true after a large field", []string{`{"pad":"` + pad + `","ok":true}`}, store.DeliverySucceeded, "", 1},
		{"ratelimited is retried", []string{`{"ok":false,"error":"ratelimited"}`, `{"ok":true}`}, store.DeliverySucceeded, "", 2},
		{"ratelimited until the schedule ends", []string{`{"ok":false,"error":"ratelimited"}`},
			store.DeliveryFailed, "gave up after 4 attempts: response ok is false: error ratelimited", 4},
		{"ok absent", []string{`{"warning":"x"}`}, store.DeliveryFailed, "response ok is absent (success_when needs true)", 1},
		{"not JSON", []string{`<html>oops</html>`}, store.DeliveryFailed, "response is not JSON (success_when needs ok = true)", 1},
		{"ok is a string", []string{`{"ok":"true"}`}, store.DeliveryFailed, `response ok is "true"`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				w.Header().Set("Content-Type", "application/json")
				return status(w, 200, tt.bodies[min(n, len(tt.bodies)-1)])
			})
			db := openDB(t, nil)
			start(t, db, map[string]*connectors.Outbound{"slack": slackLike(srv.URL)}, Config{})
			d := postDelivery(srv.URL, "C1")
			enqueue(t, db, d)
			got := waitFinal(t, db, d.ID)
			if got.State != tt.wantState || got.Reason != tt.wantReason || len(got.Attempts) != tt.attempts {
				t.Fatalf("want %s with %q after %d attempts:\n%s", tt.wantState, tt.wantReason, tt.attempts, describe(got))
			}
			first := got.Attempts[0]
			if first.Status != 200 || first.Response != responseText([]byte(tt.bodies[0])) {
				t.Errorf("first attempt keeps status and response excerpt:\n%s", describe(got))
			}
			if tt.wantState == store.DeliveryFailed && !strings.Contains(first.Error, "HTTP 200 OK: response ") {
				t.Errorf("attempt error %q should name the status and the body failure", first.Error)
			}
			if n := len(rc.requests()); n != tt.attempts {
				t.Errorf("target saw %d requests, want %d (body failures are not retried in-process)", n, tt.attempts)
			}
		})
	}
}

// TestSuccessWhenBreaker: a refusal in the body (channel_not_found) shows
// the target is up and never opens the breaker; a temporary one
// (ratelimited) counts against it like a 5xx.
func TestSuccessWhenBreaker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		errCode  string
		wantOpen bool
	}{{"channel_not_found", false}, {"ratelimited", true}} {
		t.Run(tc.errCode, func(t *testing.T) {
			t.Parallel()
			_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				return status(w, 200, `{"ok":false,"error":"`+tc.errCode+`"}`)
			})
			clk := newRunningClock()
			db := openDB(t, clk.Now)
			out := slackLike(srv.URL)
			out.Concurrency = 1
			out.Breaker = connectors.BreakerConfig{Failures: 2, ErrorRatio: 1, MinRequests: 1000, Window: time.Minute, Cooldown: 10 * time.Minute}
			out.Retry.Schedule = []time.Duration{time.Hour} // a retried delivery waits: one attempt each
			start(t, db, map[string]*connectors.Outbound{"slack": out}, Config{Now: clk.Now})
			var ds []*store.Delivery
			for i := range 3 {
				ds = append(ds, postDelivery(srv.URL, fmt.Sprintf("C%d", i)))
			}
			enqueue(t, db, ds...)
			throttled := 0
			for _, d := range ds {
				got := waitFor(t, db, d.ID, "an outcome", func(d *store.Delivery) bool {
					return d.State == store.DeliveryFailed || (d.State == store.DeliveryPending && d.Reason != "")
				})
				if got.Reason == "throttled: circuit breaker open" {
					throttled++
				}
			}
			if tc.wantOpen && throttled != 1 {
				t.Errorf("%d deliveries held back by the breaker, want 1 (opened by 2 temporary body failures)", throttled)
			}
			if !tc.wantOpen && throttled != 0 {
				t.Errorf("%d deliveries held back by the breaker, want 0 (a refusal shows the target is up)", throttled)
			}
		})
	}
}

// TestRetryErrorsOfARefusal: a platform that throttles with HTTP 400 and
// an error code in the body (the WhatsApp Cloud API's 130429) is retried
// when the connector lists the code; any other 400 is dead at once.
func TestRetryErrorsOfARefusal(t *testing.T) {
	t.Parallel()
	throttled := `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429}}`
	tests := []struct {
		name       string
		bodies     []string
		wantState  string
		wantReason string
		attempts   int
	}{
		{"throttled, then sent", []string{throttled, `{"messages":[{"id":"wamid.1"}]}`}, store.DeliverySucceeded, "", 2},
		{"throttled until the schedule ends", []string{throttled}, store.DeliveryFailed,
			"gave up after 4 attempts: HTTP 400 Bad Request: error 130429", 4},
		{"another code is dead at once", []string{`{"error":{"code":131026}}`}, store.DeliveryFailed, "rejected: HTTP 400 Bad Request", 1},
		{"no code", []string{`not json`}, store.DeliveryFailed, "rejected: HTTP 400 Bad Request", 1},
		{"the code after 6 KB", []string{`{"error":{"details":"` + strings.Repeat("x", 6000) + `","code":130429}}`, `{"messages":[]}`}, store.DeliverySucceeded, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, srv := serve(t, func(n int, r *http.Request, w http.ResponseWriter) int {
				w.Header().Set("Content-Type", "application/json")
				body := tt.bodies[min(n, len(tt.bodies)-1)]
				if strings.Contains(body, `"error"`) || body == "not json" {
					return status(w, 400, body)
				}
				return status(w, 200, body)
			})
			out := outbound("whatsapp", srv.URL)
			out.Retry.RetryErrors = &connectors.RetryErrors{Path: "error.code", Codes: []string{"130429", "131056"}}
			db := openDB(t, nil)
			start(t, db, map[string]*connectors.Outbound{"whatsapp": out}, Config{})
			d := httpDelivery("whatsapp", "34600111222", srv.URL+"/123/messages", `{"messaging_product":"whatsapp"}`)
			enqueue(t, db, d)
			got := waitFinal(t, db, d.ID)
			if got.State != tt.wantState || got.Reason != tt.wantReason || len(got.Attempts) != tt.attempts {
				t.Fatalf("want %s with %q after %d attempts:\n%s", tt.wantState, tt.wantReason, tt.attempts, describe(got))
			}
		})
	}
}
