package delivery

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
)

func TestClassify(t *testing.T) {
	retryOn := connectors.DefaultRetryPolicy().RetryOn
	tests := []struct {
		status  int
		success []int
		want    class
	}{
		{200, nil, classSuccess},
		{201, nil, classSuccess},
		{204, nil, classSuccess},
		{299, nil, classSuccess},
		{200, []int{201}, classReject},
		{201, []int{201}, classSuccess},
		{302, []int{302}, classSuccess},
		{410, []int{410}, classSuccess},
		{301, nil, classRedirect},
		{302, nil, classRedirect},
		{304, nil, classRedirect},
		{307, nil, classRedirect},
		{410, nil, classGone},
		{408, nil, classRetry},
		{429, nil, classRetry},
		{500, nil, classRetry},
		{502, nil, classRetry},
		{503, nil, classRetry},
		{504, nil, classRetry},
		{400, nil, classReject},
		{401, nil, classReject},
		{404, nil, classReject},
		{422, nil, classReject},
		{501, nil, classReject},
		{505, nil, classReject},
		{100, nil, classReject},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.success, retryOn); got != tt.want {
			t.Errorf("classify(%d, %v) = %d, want %d", tt.status, tt.success, got, tt.want)
		}
	}
	if got := classify(418, nil, []int{418}); got != classRetry {
		t.Errorf("custom RetryOn 418: got %d, want retry", got)
	}
	if got := classify(503, nil, []int{}); got != classReject {
		t.Errorf("empty RetryOn 503: got %d, want reject", got)
	}
}

func TestConnectorFailure(t *testing.T) {
	for status, want := range map[int]bool{200: false, 302: false, 400: false, 404: false, 410: false, 429: true, 500: true, 501: true, 503: true} {
		if got := connectorFailure(status); got != want {
			t.Errorf("connectorFailure(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"0", 0, true},
		{"2", 2 * time.Second, true},
		{" 120 ", 120 * time.Second, true},
		{"3600", time.Hour, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"2s", 0, false},
		{"soon", 0, false},
		{"99999999999999999999999", time.Duration(1<<63 - 1), true},
		{"9223372036", 9223372036 * time.Second, true},
		{"9223372037", time.Duration(1<<63 - 1), true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute, true},
		{"Sat Mar  1 12:00:10 2025", 10 * time.Second, true},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true},
		{"Sat, 01 Mar 2025 12:00:30", 0, false},
		// Dates far ahead saturate (time.Time.Sub does), never wrap.
		{"Fri, 31 Dec 9999 23:59:59 GMT", time.Duration(1<<63 - 1), true},
		{"Sat, 01 Mar 2325 12:00:00 GMT", time.Duration(1<<63 - 1), true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "Sat, 01 Mar 2025 12:00:30 GMT", "Sun Nov  6 08:49:37 1994", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v: negative", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, false: a refused value must give 0", s, d)
		}
	})
}

func TestJittered(t *testing.T) {
	tests := []struct {
		base   time.Duration
		jitter float64
		r      float64
		want   time.Duration
	}{
		{10 * time.Second, 0.2, 0.5, 10 * time.Second},
		{10 * time.Second, 0.2, 0, 8 * time.Second},
		{10 * time.Second, 0.2, 0.75, 11 * time.Second},
		{10 * time.Second, 0.2, 0.25, 9 * time.Second},
		{10 * time.Second, 0, 0.99, 10 * time.Second},
		{10 * time.Second, 1, 0, 0},
		{10 * time.Second, 0.2, -3, 8 * time.Second},
	}
	for _, tt := range tests {
		if got := jittered(tt.base, tt.jitter, tt.r); got != tt.want {
			t.Errorf("jittered(%v, %v, %v) = %v, want %v", tt.base, tt.jitter, tt.r, got, tt.want)
		}
	}
	// Huge bases saturate instead of wrapping to a negative wait (a base
	// over about 243 years overflowed with +20%); factors below 1 still
	// shrink them.
	const maxWait = time.Duration(1<<63 - 1)
	year := 365 * 24 * time.Hour
	for _, tt := range []struct {
		base   time.Duration
		jitter float64
		r      float64
		want   time.Duration
	}{
		{250 * year, 0.2, 0.999, maxWait},
		{maxWait, 0.2, 0.75, maxWait},
		{maxWait, 1, 0.999999, maxWait},
		{maxWait, 0, 0.5, maxWait},
	} {
		if got := jittered(tt.base, tt.jitter, tt.r); got != tt.want {
			t.Errorf("jittered(%v, %v, %v) = %v, want %v", tt.base, tt.jitter, tt.r, got, tt.want)
		}
	}
	if got := jittered(maxWait, 0.2, 0); got <= 0 || got > maxWait {
		t.Errorf("jittered(max, 0.2, 0) = %v, want 80%% of the maximum", got)
	}
	// r close to 1 stays below the upper bound.
	if got := jittered(10*time.Second, 0.2, 1); got >= 12*time.Second || got < 11990*time.Millisecond {
		t.Errorf("jittered r=1: %v, want just under 12s", got)
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	def := connectors.DefaultRetryPolicy()
	if got := retryPolicy(connectors.RetryPolicy{}); !reflect.DeepEqual(got, def) {
		t.Errorf("zero policy: got %+v, want defaults %+v", got, def)
	}
	p := retryPolicy(connectors.RetryPolicy{Schedule: []time.Duration{}, Jitter: 0, RetryOn: []int{503}})
	if len(p.Schedule) != 0 || p.Jitter != 0 || p.MaxRetryAfter != def.MaxRetryAfter || !reflect.DeepEqual(p.RetryOn, []int{503}) {
		t.Errorf("explicit policy: got %+v", p)
	}
	p = retryPolicy(connectors.RetryPolicy{MaxRetryAfter: time.Minute, Jitter: 3})
	if !reflect.DeepEqual(p.Schedule, def.Schedule) || p.Jitter != 1 || p.MaxRetryAfter != time.Minute || !reflect.DeepEqual(p.RetryOn, def.RetryOn) {
		t.Errorf("partial policy: got %+v", p)
	}
}

func TestNextRetry(t *testing.T) {
	def := connectors.DefaultRetryPolicy()
	short := connectors.RetryPolicy{Schedule: []time.Duration{time.Second, 10 * time.Second}, Jitter: 0.2, MaxRetryAfter: 5 * time.Minute}
	tests := []struct {
		name   string
		p      connectors.RetryPolicy
		n      int
		status int
		ra     time.Duration
		hasRA  bool
		r      float64
		want   retryDecision
	}{
		{"first retry, no jitter draw", def, 0, 500, 0, false, 0.5, retryDecision{wait: 5 * time.Second}},
		{"first retry, low jitter", def, 0, 500, 0, false, 0, retryDecision{wait: 4 * time.Second}},
		{"first retry, high jitter", def, 0, 500, 0, false, 0.75, retryDecision{wait: 5500 * time.Millisecond}},
		{"third retry", def, 2, 0, 0, false, 0.5, retryDecision{wait: 2 * time.Minute}},
		{"last retry", def, 9, 503, 0, false, 0.5, retryDecision{wait: 24 * time.Hour}},
		{"schedule used up", def, 10, 503, 0, false, 0.5, retryDecision{giveUp: true}},
		{"short schedule used up", short, 2, 500, 0, false, 0.5, retryDecision{giveUp: true}},
		{"retry-after longer than schedule", short, 0, 503, 2 * time.Minute, true, 0.5, retryDecision{wait: 2 * time.Minute}},
		{"retry-after shorter than schedule", short, 1, 503, 2 * time.Second, true, 0.5, retryDecision{wait: 10 * time.Second}},
		{"retry-after capped", short, 0, 503, 3 * time.Hour, true, 0.5, retryDecision{wait: 5 * time.Minute}},
		{"429 at least a minute", short, 0, 429, 0, false, 0.5, retryDecision{wait: time.Minute}},
		{"429 with short retry-after", short, 0, 429, 2 * time.Second, true, 0.5, retryDecision{wait: time.Minute}},
		{"429 with long retry-after", short, 0, 429, 4 * time.Minute, true, 0.5, retryDecision{wait: 4 * time.Minute}},
		{"429 minimum beats the cap", connectors.RetryPolicy{Schedule: []time.Duration{time.Second}, MaxRetryAfter: 10 * time.Second}, 0, 429, time.Hour, true, 0.5, retryDecision{wait: time.Minute}},
		{"no durable retries", connectors.RetryPolicy{Schedule: []time.Duration{}}, 0, 500, 0, false, 0.5, retryDecision{giveUp: true}},
		{"network error", short, 1, 0, 0, false, 0, retryDecision{wait: 8 * time.Second}},
		// Policies built in code skip the loader's bound: still no wrap.
		{"huge step saturates", connectors.RetryPolicy{Schedule: []time.Duration{time.Duration(1<<63 - 1)}, Jitter: 0.2}, 0, 500, 0, false, 0.9, retryDecision{wait: time.Duration(1<<63 - 1)}},
		{"huge retry-after under a huge cap", connectors.RetryPolicy{Schedule: []time.Duration{time.Second}, MaxRetryAfter: time.Duration(1<<63 - 1)}, 0, 503, time.Duration(1<<63 - 1), true, 0.5, retryDecision{wait: time.Duration(1<<63 - 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextRetry(tt.p, tt.n, tt.status, tt.ra, tt.hasRA, tt.r); got != tt.want {
				t.Errorf("nextRetry = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestQuickBackoff(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	resp := func(ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: 503, Header: h}
	}
	tests := []struct {
		name string
		i    int
		resp *http.Response
		r    float64
		want time.Duration
	}{
		{"network error, first", 0, nil, 0.5, 100 * time.Millisecond},
		{"network error, second", 1, nil, 0.5, 200 * time.Millisecond},
		{"capped", 5, nil, 0.5, time.Second},
		{"capped even with jitter", 5, nil, 0.99, time.Second},
		{"jitter low", 0, nil, 0, 80 * time.Millisecond},
		{"retry-after honoured", 0, resp("2"), 0.5, 2 * time.Second},
		{"retry-after date", 0, resp("Sat, 01 Mar 2025 12:00:03 GMT"), 0.5, 3 * time.Second},
		{"retry-after too long ignored", 0, resp("30"), 0.5, 100 * time.Millisecond},
		{"no retry-after", 1, resp(""), 0.5, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := quickBackoff(tt.i, tt.resp, now, tt.r); got != tt.want {
			t.Errorf("%s: quickBackoff = %v, want %v", tt.name, got, tt.want)
		}
	}
}
