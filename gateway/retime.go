package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// Retime defaults.
const (
	// retimeBatch is the most timers one retime write transaction handles,
	// so that bbolt's only writer is never held for long.
	retimeBatch = 500
	// retimePage is how many timer names one read transaction of the walk
	// lists (keys only, nothing decoded).
	retimePage = 10000
	// retimeDirty is the stored signature of a rule whose timers a retime
	// job is moving: it equals no real signature, so a job cut short (a
	// crash, a second reload) is done again whatever the next config says.
	retimeDirty = "retiming"
)

// retimer keeps armed timers in line with the time-based rules in force.
// A timer's due time is computed from the rule's duration, window and
// calendar when the timer is armed, and which entities keep a clock, and
// which clocks stand paused, follow the rule's connector filter and
// pause_when; after a reload or a restart with edited rule files (or
// calendars) the store remembers, per rule, the timing signature
// (rules.Set.TimingSignature) its timers were armed under. Paused clocks
// keep a parked timer, so the walk finds them too. A job
// compares them with the current set's, and for the rules that changed or
// disappeared walks the armed timers in bounded transactions and moves each
// timer to the due time its rule now gives (cancelling it when the rule is
// gone or gives none). The new signatures are stored only once the walk
// completed. One job runs at a time: a new reload cancels the running job
// and starts another.
type retimer struct {
	db    *store.DB
	log   *slog.Logger
	now   func() time.Time
	rules func() *rules.Set
	// armed is told the earliest due time of the timers a transaction moved
	// earlier (it wakes the scheduler).
	armed func(due time.Time)
	batch int
	page  int

	mu     sync.Mutex
	base   context.Context // the context of Run; nil while not running
	cancel context.CancelFunc
	done   chan struct{} // closed when the current job ended
	// finished, when set, is told of every job's outcome (tests).
	finished func(retimeReport, error)
}

// retimeCount is what a job did to one rule's timers.
type retimeCount struct {
	Moved, Cancelled, Unchanged int
}

// retimeReport is the outcome of one retime job.
type retimeReport struct {
	// Rules are the rules whose timers were walked (nil: none changed);
	// All is set when the store held no signatures yet and every timer
	// was checked.
	Rules []string
	All   bool
	// Counts are per rule id (only rules that had timers).
	Counts map[string]*retimeCount
	Took   time.Duration
}

func newRetimer(db *store.DB, log *slog.Logger, now func() time.Time, set func() *rules.Set, armed func(time.Time)) *retimer {
	return &retimer{db: db, log: log, now: now, rules: set, armed: armed, batch: retimeBatch, page: retimePage}
}

// seed records the current rules' timing signatures in a store that has
// none and no armed timers (a new data directory): there is nothing to
// retime, and the timers armed from now on follow these rules. A store
// with timers but no signatures (written before signatures were kept) is
// left alone: the first start checks every timer once.
func (r *retimer) seed() error {
	_, found, err := r.db.TimingSignatures()
	if err != nil || found {
		return err
	}
	st, err := r.db.Stats()
	if err != nil || st.Timers > 0 {
		return err
	}
	cur := r.rules().TimingSignatures()
	return r.db.Update(func(tx *store.Tx) error { return tx.PutTimingSignatures(cur) })
}

// start runs a job for the current config in the background; later
// triggers run more until stop. ctx is the context of the server's work.
func (r *retimer) start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base = ctx
	r.launch()
}

// trigger cancels the running job, if any, and starts one for the current
// config. Before start (and after stop) it does nothing: start checks the
// config in force then.
func (r *retimer) trigger() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.base == nil {
		return
	}
	r.halt()
	r.launch()
}

// stop cancels the running job and waits for it; no job starts after it.
func (r *retimer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base = nil
	r.halt()
}

// wait blocks until the current job (if any) has ended.
func (r *retimer) wait() {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// halt cancels the running job and waits for it (r.mu held). A job checks
// for cancellation between transactions, so this waits for at most one.
func (r *retimer) halt() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// launch starts a job (r.mu held, r.base set).
func (r *retimer) launch() {
	ctx, cancel := context.WithCancel(r.base)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		rep, err := r.run(ctx)
		switch {
		case errors.Is(err, context.Canceled):
			r.log.Info("timer retime interrupted; it starts again with the next config or start", "rules", rep.Rules)
		case err != nil:
			r.log.Error("timer retime failed; it is retried at the next reload or start", "rules", rep.Rules, "err", err)
		}
		if r.finished != nil {
			r.finished(rep, err)
		}
	}()
}

// run is one job: compare the signatures, walk the affected timers, store
// the new signatures.
func (r *retimer) run(ctx context.Context) (retimeReport, error) {
	start := time.Now()
	set := r.rules()
	cur := set.TimingSignatures()
	stored, found, err := r.db.TimingSignatures()
	if err != nil {
		return retimeReport{}, fmt.Errorf("retime: %w", err)
	}
	affected := map[string]bool{}
	for id, sig := range stored {
		if cur[id] != sig {
			affected[id] = true
		}
	}
	rep := retimeReport{All: !found, Counts: map[string]*retimeCount{}}
	for id := range affected {
		rep.Rules = append(rep.Rules, id)
	}
	sort.Strings(rep.Rules)
	if found && len(affected) == 0 {
		// Nothing armed follows another timing; new time-based rules have
		// no timers yet. Record them.
		if !maps.Equal(stored, cur) {
			if err := r.db.Update(func(tx *store.Tx) error { return tx.PutTimingSignatures(cur) }); err != nil {
				return rep, fmt.Errorf("retime: %w", err)
			}
		}
		return rep, nil
	}
	if found {
		marked := maps.Clone(stored)
		for id := range affected {
			marked[id] = retimeDirty
		}
		if err := r.db.Update(func(tx *store.Tx) error { return tx.PutTimingSignatures(marked) }); err != nil {
			return rep, fmt.Errorf("retime: mark rules: %w", err)
		}
	}
	if rep.All {
		r.log.Info("checking every armed timer against the time-based rules (first start with timing signatures)")
	} else {
		r.log.Info("time-based rules changed; moving their armed timers", "rules", rep.Rules)
	}
	walked := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		refs, next, err := r.db.TimerRefs(after, r.page)
		if err != nil {
			return rep, fmt.Errorf("retime: %w", err)
		}
		var todo []store.TimerRef
		for _, ref := range refs {
			if rep.All || affected[ref.Rule] {
				todo = append(todo, ref)
			}
		}
		for len(todo) > 0 {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			n := min(len(todo), r.batch)
			if err := r.retimeBatch(set, todo[:n], &rep); err != nil {
				return rep, err
			}
			walked += n
			todo = todo[n:]
		}
		if next == "" {
			break
		}
		after = next
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err := r.db.Update(func(tx *store.Tx) error { return tx.PutTimingSignatures(cur) }); err != nil {
		return rep, fmt.Errorf("retime: store signatures: %w", err)
	}
	rep.Took = time.Since(start)
	ids := make([]string, 0, len(rep.Counts))
	for id := range rep.Counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := rep.Counts[id]
		r.log.Info("timers retimed", "rule", id, "moved", c.Moved, "cancelled", c.Cancelled, "unchanged", c.Unchanged)
	}
	r.log.Info("timer retime done", "rules", rep.Rules, "timers", walked, "took", rep.Took.Round(time.Millisecond))
	return rep, nil
}

// retimeBatch moves, cancels or keeps the named timers in one transaction
// and wakes the scheduler when one moved earlier.
func (r *retimer) retimeBatch(set *rules.Set, refs []store.TimerRef, rep *retimeReport) error {
	now := r.now()
	var earliest time.Time
	counts := map[string]*retimeCount{}
	count := func(rule string) *retimeCount {
		c := counts[rule]
		if c == nil {
			c = &retimeCount{}
			counts[rule] = c
		}
		return c
	}
	err := r.db.Update(func(tx *store.Tx) error {
		clear(counts)
		earliest = time.Time{}
		for _, ref := range refs {
			moved, err := retimeOne(tx, set, ref, now, count(ref.Rule))
			if err != nil {
				return fmt.Errorf("retime timer %s %s: %w", ref.Key, ref.Rule, err)
			}
			if !moved.IsZero() && (earliest.IsZero() || moved.Before(earliest)) {
				earliest = moved
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, c := range counts {
		t := rep.Counts[id]
		if t == nil {
			t = &retimeCount{}
			rep.Counts[id] = t
		}
		t.Moved += c.Moved
		t.Cancelled += c.Cancelled
		t.Unchanged += c.Unchanged
	}
	if !earliest.IsZero() && r.armed != nil {
		r.armed(earliest)
	}
	return nil
}

// retimeOne brings one timer in line with set. It returns the new due time
// when the timer moved earlier (zero otherwise). A timer whose rule is no
// longer a time-based rule of the set is cancelled and the rule's clock
// leaves the snapshot, as the pipeline does at the entity's next event; the
// clock is then brought in line with the rule (rules.Set.Reclock: ended
// when the rule's connector filter left the entity out, restarted when its
// since: field changed, resumed or paused when its pause_when changed);
// a timer of a rule that gives no due time for the clock (done, no clock)
// is cancelled; a timer on a different due time moves there (a paused
// clock's timer is parked, see rules.TimerOp.Parked) and counts as armed
// now.
func retimeOne(tx *store.Tx, set *rules.Set, ref store.TimerRef, now time.Time, c *retimeCount) (time.Time, error) {
	t, err := tx.Timer(ref.Key, ref.Rule)
	if err != nil || t == nil { // fired or cancelled since the walk read it
		return time.Time{}, err
	}
	snap, err := tx.Entity(ref.Key)
	if err != nil {
		return time.Time{}, err
	}
	if snap == nil {
		c.Cancelled++
		return time.Time{}, tx.DeleteTimer(ref.Key, ref.Rule)
	}
	clock := snap.Clocks[ref.Rule]
	if rule := set.Rule(ref.Rule); rule == nil || rule.Timer == nil {
		c.Cancelled++
		if clock != nil {
			delete(snap.Clocks, ref.Rule)
			if err := tx.PutEntity(snap); err != nil {
				return time.Time{}, err
			}
		}
		return time.Time{}, tx.DeleteTimer(ref.Key, ref.Rule)
	}
	if fresh, changed := set.Reclock(ref.Rule, snap, clock, now); changed {
		// The clock as the rule now has it: ended (the connector filter
		// left the entity out, or its since: field has no time), restarted
		// from the since: field's time, or resumed (pause_when removed) or
		// paused at now.
		if fresh == nil {
			delete(snap.Clocks, ref.Rule)
		} else {
			snap.Clocks[ref.Rule] = fresh
		}
		if err := tx.PutEntity(snap); err != nil {
			return time.Time{}, err
		}
		clock = fresh
	}
	due, ok := set.TimerDue(ref.Rule, clock, now)
	switch {
	case !ok:
		c.Cancelled++
		return time.Time{}, tx.DeleteTimer(ref.Key, ref.Rule)
	case due.Equal(t.Due):
		c.Unchanged++
		return time.Time{}, nil
	}
	c.Moved++
	if err := tx.PutTimer(store.Timer{Key: ref.Key, Rule: ref.Rule, Due: due, ArmedAt: now}); err != nil {
		return time.Time{}, err
	}
	if due.Before(t.Due) {
		return due, nil
	}
	return time.Time{}, nil
}
