package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// Kinds of pruned records, the kind label of hookline_pruned_total.
const (
	pruneDedupe       = "dedupe"
	pruneFingerprints = "fingerprints"
	pruneRuleFirings  = "rule_firings"
	pruneInbox        = "inbox"
	pruneEvents       = "events"
	pruneDeliveries   = "deliveries"
)

// housekeeper prunes, every retention.interval, what the store no longer
// needs: expired dedupe keys, echo fingerprints and rule firings, and the
// history older than retention allows. Settings come from the config in
// force at each run, so a reload changes them.
type housekeeper struct {
	db     *store.DB
	log    *slog.Logger
	now    func() time.Time
	bundle func() *Bundle
	// pruned counts pruned records by kind; nil: no metrics.
	pruned *prometheus.CounterVec
}

// newHousekeeper builds the server's housekeeper and registers
// hookline_pruned_total on its registry (reusing the series when it is
// already there).
func (s *Server) newHousekeeper() *housekeeper {
	h := &housekeeper{db: s.db, log: s.log, now: s.now, bundle: s.bundle.Load}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookline_pruned_total", Help: "Records deleted by housekeeping, by kind.",
	}, []string{"kind"})
	if err := s.registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			s.log.Error("register housekeeping metrics", "err", err)
			return h
		}
		c, _ = are.ExistingCollector.(*prometheus.CounterVec)
	}
	h.pruned = c
	return h
}

// loop runs housekeeping every retention.interval (read again after each
// run) until ctx ends.
func (h *housekeeper) loop(ctx context.Context) {
	for {
		t := time.NewTimer(h.bundle().File.Retention.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		h.run(ctx)
	}
}

// pruneStep is one thing a housekeeping run prunes.
type pruneStep struct {
	kind  string
	prune func(ctx context.Context, now time.Time) (store.PruneResult, error)
}

// steps lists what a run prunes, in order, for the config b.
func (h *housekeeper) steps(b *Bundle) []pruneStep {
	count := func(f func(time.Time) (int, error), at func(time.Time) time.Time) func(context.Context, time.Time) (store.PruneResult, error) {
		return func(_ context.Context, now time.Time) (store.PruneResult, error) {
			n, err := f(at(now))
			return store.PruneResult{Deleted: n}, err
		}
	}
	same := func(t time.Time) time.Time { return t }
	keep := ruleFiringsKeep(b.Rules)
	r := b.File.Retention
	return []pruneStep{
		{pruneDedupe, count(h.db.PruneDedupe, same)},
		{pruneFingerprints, count(h.db.PruneFingerprints, same)},
		{pruneRuleFirings, count(h.db.PruneRuleFirings, func(t time.Time) time.Time { return t.Add(-keep) })},
		{pruneInbox, byAge(r.Inbox, h.db.PruneInbox)},
		{pruneEvents, byAge(r.Events, h.db.PruneEvents)},
		{pruneDeliveries, byAge(r.Deliveries, h.db.PruneDeliveries)},
	}
}

// byAge turns an age prune into a step that deletes what is older than
// keep (nothing when keep is forever).
func byAge(keep KeepFor, prune func(context.Context, time.Time) (store.PruneResult, error)) func(context.Context, time.Time) (store.PruneResult, error) {
	return func(ctx context.Context, now time.Time) (store.PruneResult, error) {
		cutoff, ok := keep.Cutoff(now)
		if !ok {
			return store.PruneResult{}, nil
		}
		return prune(ctx, cutoff)
	}
}

// run prunes once and returns what it deleted by kind. A step that fails
// is logged and the others still run; when ctx ends the run stops quietly.
func (h *housekeeper) run(ctx context.Context) map[string]int {
	now := h.now()
	deleted := map[string]int{}
	var attrs []any
	for _, st := range h.steps(h.bundle()) {
		res, err := st.prune(ctx, now)
		if res.Deleted > 0 {
			deleted[st.kind] = res.Deleted
			attrs = append(attrs, st.kind, res.Deleted)
			if h.pruned != nil {
				h.pruned.WithLabelValues(st.kind).Add(float64(res.Deleted))
			}
		}
		if res.Kept > 0 {
			h.log.Debug("housekeeping kept old records that are not final", "kind", st.kind, "kept", res.Kept)
		}
		if err != nil {
			if ctx.Err() != nil {
				return deleted
			}
			h.log.Error("housekeeping: prune failed", "kind", st.kind, "err", err)
		}
	}
	if len(attrs) > 0 {
		h.log.Info("housekeeping pruned", attrs...)
	}
	return deleted
}

// ruleFiringsKeep is how long rule firings must be kept for the rules in
// force: the longest window of any rule's limit (rule-scope limits count
// stored firings over their window), at least an hour.
func ruleFiringsKeep(set *rules.Set) time.Duration {
	keep := time.Hour
	if set == nil {
		return keep
	}
	for _, r := range set.Rules() {
		if r.Limit != nil && r.Limit.Per > keep {
			keep = r.Limit.Per
		}
	}
	return keep
}
