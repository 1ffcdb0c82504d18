package delivery

import (
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
)

// step is one event of a breaker script: advance the fake clock, then
// either ask allow (expecting ok and, when refused, the wait) or record a
// verdict; then check the state. A verdict is recorded with the ticket of
// the last request allow let through (at first, one taken when the
// script starts, closed); a straggler's with the first ticket of the
// script: a request sent before the breaker first opened.
type step struct {
	advance   time.Duration
	allow     bool
	wantOK    bool
	wantWait  time.Duration
	record    *verdict
	straggler bool
	want      breakerState
}

func rec(v verdict) *verdict { return &v }

func TestBreaker(t *testing.T) {
	cfg := connectors.BreakerConfig{Failures: 3, ErrorRatio: 0.5, MinRequests: 6, Window: 10 * time.Second, Cooldown: 5 * time.Second}
	ok := step{allow: true, wantOK: true, want: breakerClosed}
	fail := rec(verdictFailure)
	succ := rec(verdictSuccess)
	neutral := rec(verdictNeutral)
	tests := []struct {
		name  string
		steps []step
	}{
		{"consecutive failures open it", []step{
			{record: fail, want: breakerClosed},
			{record: fail, want: breakerClosed},
			{record: fail, want: breakerOpen},
			{allow: true, wantOK: false, wantWait: 5 * time.Second, want: breakerOpen},
			{advance: 2 * time.Second, allow: true, wantOK: false, wantWait: 3 * time.Second, want: breakerOpen},
		}},
		{"a success resets the consecutive count", []step{
			{record: fail, want: breakerClosed},
			{record: fail, want: breakerClosed},
			{record: succ, want: breakerClosed},
			{record: fail, want: breakerClosed},
			{record: fail, want: breakerClosed},
			ok,
		}},
		{"4xx-like neutral outcomes do not count", []step{
			{record: fail, want: breakerClosed},
			{record: fail, want: breakerClosed},
			{record: neutral, want: breakerClosed},
			{record: fail, want: breakerOpen},
		}},
		{"error ratio over the window opens it", []step{
			{record: fail}, {record: succ}, {record: fail}, {record: succ}, {record: fail},
			{record: succ, want: breakerClosed},
			// 6 requests, 3 failures: ratio 0.5 reached on the next failure check.
			{record: fail, want: breakerOpen},
		}},
		{"ratio needs MinRequests", []step{
			{record: fail}, {record: succ}, {record: fail}, {record: succ},
			{record: fail, want: breakerClosed},
		}},
		{"old outcomes leave the window", []step{
			{record: fail}, {record: succ}, {record: fail}, {record: succ}, {record: fail}, {record: succ},
			{advance: 30 * time.Second, record: fail, want: breakerClosed},
			{record: succ, want: breakerClosed},
		}},
		{"cooldown then one probe; success closes", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{advance: 5 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
			{allow: true, wantOK: false, wantWait: time.Second, want: breakerHalfOpen},
			{record: succ, want: breakerClosed},
			ok, ok,
		}},
		{"probe failure re-opens with a new cooldown", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{advance: 6 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
			{advance: time.Second, record: fail, want: breakerOpen},
			{advance: 4 * time.Second, allow: true, wantOK: false, wantWait: time.Second, want: breakerOpen},
			{advance: time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
		}},
		{"neutral probe frees the probe slot", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{advance: 5 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
			{record: neutral, want: breakerHalfOpen},
			{allow: true, wantOK: true, want: breakerHalfOpen},
			{allow: true, wantOK: false, wantWait: time.Second, want: breakerHalfOpen},
		}},
		{"stragglers while open change nothing", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{record: succ, straggler: true, want: breakerOpen},
			{record: fail, straggler: true, want: breakerOpen},
			{advance: 5 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
		}},
		{"a straggler's success during the probe does not close it", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{advance: 5 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
			{record: succ, straggler: true, want: breakerHalfOpen},
			{allow: true, wantOK: false, wantWait: time.Second, want: breakerHalfOpen},
			{record: fail, want: breakerOpen}, // the probe's own outcome
		}},
		{"a straggler's failure during the probe does not re-open it", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{advance: 5 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
			{record: fail, straggler: true, want: breakerHalfOpen},
			{record: neutral, straggler: true, want: breakerHalfOpen},
			{allow: true, wantOK: false, wantWait: time.Second, want: breakerHalfOpen},
			{record: succ, want: breakerClosed}, // the probe's own outcome
		}},
		{"stragglers do not count once the probe closed it", []step{
			{record: fail}, {record: fail}, {record: fail, want: breakerOpen},
			{advance: 5 * time.Second, allow: true, wantOK: true, want: breakerHalfOpen},
			{record: succ, want: breakerClosed},
			{record: fail, straggler: true}, {record: fail, straggler: true},
			{record: fail, straggler: true, want: breakerClosed},
			ok,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(cfg)
			now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			_, first, _ := b.allow(now)
			last := first
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				if s.allow {
					gotOK, ticket, gotWait := b.allow(now)
					if gotOK != s.wantOK || gotWait != s.wantWait {
						t.Fatalf("step %d: allow = %v, %v; want %v, %v", i, gotOK, gotWait, s.wantOK, s.wantWait)
					}
					if gotOK {
						last = ticket
					}
				}
				if s.record != nil {
					ticket := last
					if s.straggler {
						ticket = first
					}
					b.record(now, ticket, *s.record)
				}
				if b.state != s.want {
					t.Fatalf("step %d: state %s, want %s", i, b.state, s.want)
				}
			}
		})
	}
}

func TestBreakerDefaults(t *testing.T) {
	b := newBreaker(connectors.BreakerConfig{})
	if b.cfg != connectors.DefaultBreakerConfig() {
		t.Fatalf("defaults: got %+v", b.cfg)
	}
	now := time.Now()
	_, ticket, _ := b.allow(now)
	for i := range 4 {
		b.record(now, ticket, verdictFailure)
		if b.state != breakerClosed {
			t.Fatalf("open after %d failures, default is 5", i+1)
		}
	}
	b.record(now, ticket, verdictFailure)
	if b.state != breakerOpen {
		t.Fatal("not open after 5 failures")
	}
	b.setConfig(connectors.BreakerConfig{Cooldown: time.Second})
	if b.state != breakerOpen || b.cfg.Cooldown != time.Second || b.cfg.Failures != 5 {
		t.Fatalf("setConfig: state %s cfg %+v", b.state, b.cfg)
	}
}
