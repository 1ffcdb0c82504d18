package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// Scheduler defaults.
const (
	// timerBatch is how many due timers fire in one store transaction.
	timerBatch = 256
	// maxSchedulerSleep bounds one sleep of the scheduler, so that a clock
	// set forward or a missed wake-up costs at most this delay.
	maxSchedulerSleep = time.Second
	// schedulerRetry is the least the scheduler waits after a batch of
	// due timers failed before it reads them again.
	schedulerRetry = time.Second
)

// scheduler fires due timers. It sleeps until the earliest timer's due time
// (woken early when the pipeline arms an earlier one), then takes due timers
// in due order with a range scan of the store's due index and runs each as a
// timer.fired event for its entity through the pipeline's handleEvent: the
// event, the rule's decision, its deliveries, the snapshot and the removal
// (or re-arming) of the fired timer are ONE transaction per batch, so a
// crash neither fires a timer twice nor loses it. Timers that came due while
// the gateway was down fire once when it starts.
//
// A timer fires only after the webhooks received before its due time: a
// batch takes the timers due up to now, or up to the receive time of the
// oldest inbox item still pending when that is earlier (read in the
// batch's transaction, store.Tx.OldestPendingInbox). A webhook accepted
// before the due time but not yet processed (a backlog, or a crash
// between its 202 and its processing, with the timer overdue at the
// restart) may end the timer's episode, and the timer must re-check its
// rule on the snapshot that has it. Timers held back so fire once the
// pipeline has caught up with them: while it waits for that the scheduler
// is woken after every pipeline batch (behindInbox), and re-reads at least
// every maxSchedulerSleep.
type scheduler struct {
	pipe  *pipeline
	db    *store.DB
	log   *slog.Logger
	now   func() time.Time
	batch int
	wake  chan struct{}
	// sleepUntil is the unix-nano due time the loop sleeps for (0: busy,
	// math.MaxInt64: no timer); an armed timer due earlier wakes it.
	sleepUntil atomic.Int64
	// behindInbox is set while due timers wait for inbox items received
	// before them: the pipeline wakes the loop after each batch
	// (inboxMoved).
	behindInbox atomic.Bool
	// fired, when set, is told of every timer fired and when its
	// transaction committed (tests and benchmarks measure the lag with it).
	fired func(t store.Timer, at time.Time)
}

func newScheduler(p *pipeline, log *slog.Logger) *scheduler {
	return &scheduler{pipe: p, db: p.db, log: log, now: p.now, batch: timerBatch, wake: make(chan struct{}, 1)}
}

// armed is called after a commit that armed or moved timers; due is the
// earliest of them.
func (s *scheduler) armed(due time.Time) {
	if due.UnixNano() < s.sleepUntil.Load() {
		s.notify()
	}
}

// inboxMoved is called after each pipeline batch: inbox items have left
// the pending list, so timers held back behind them may fire now.
func (s *scheduler) inboxMoved() {
	if s.behindInbox.Load() {
		s.notify()
	}
}

func (s *scheduler) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run fires due timers until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	sleep := time.NewTimer(time.Hour)
	defer sleep.Stop()
	for {
		s.sleepUntil.Store(0)
		s.behindInbox.Store(false)
		batches := s.pipe.batches.Load()
		n, behind, err := s.fireDue()
		failed := err != nil
		if failed {
			s.log.Error("timer batch failed", "err", err)
		}
		if n >= s.batch && err == nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		// From here on any armed timer wakes the loop, until it knows what
		// it sleeps for.
		s.sleepUntil.Store(math.MaxInt64)
		wait := maxSchedulerSleep
		due, ok, err := s.db.NextTimerDue()
		switch {
		case err != nil:
			s.log.Error("read next timer", "err", err)
			s.sleepUntil.Store(s.now().Add(wait).UnixNano())
		case ok:
			if d := due.Sub(s.now()); d < wait {
				wait = d
			}
			if wait <= 0 && !failed && !behind.IsZero() && due.After(behind) {
				// The next timer is due but waits for inbox items
				// received before it: the pipeline wakes the loop after
				// its next batch. A batch it finished since the one read
				// above has moved the inbox on already. (A timer not due
				// yet is slept for as usual: the pipeline's batches do
				// not wake the loop for it.)
				s.behindInbox.Store(true)
				if s.pipe.batches.Load() != batches && ctx.Err() == nil {
					continue
				}
				wait = maxSchedulerSleep
			}
			if failed && wait < schedulerRetry {
				// The due timers failed (a storage error): do not spin
				// on them.
				wait = schedulerRetry
			}
			s.sleepUntil.Store(due.UnixNano())
		default:
			s.sleepUntil.Store(s.now().Add(wait).UnixNano())
		}
		if wait <= 0 {
			continue
		}
		if !sleep.Stop() {
			select {
			case <-sleep.C:
			default:
			}
		}
		sleep.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-sleep.C:
		}
	}
}

// fireDue fires one batch of due timers and returns how many it took, and
// behind: the receive time of the oldest pending inbox item when that was
// before now (zero otherwise), up to which the batch took timers. A batch
// that fails is retried timer by timer; a timer that fails alone is
// dropped (logged), so that it cannot block the others forever.
func (s *scheduler) fireDue() (n int, behind time.Time, err error) {
	now := s.now()
	var taken []store.Timer
	behind, err = s.fire(now, nil, &taken)
	if err == nil || len(taken) == 0 {
		return len(taken), behind, err
	}
	s.log.Warn("timer batch failed, firing timers one by one", "timers", len(taken), "err", err)
	for _, t := range taken {
		one := t
		if _, err := s.fire(now, &one, nil); err != nil {
			s.log.Error("timer failed; dropping it", "entity", t.Key.String(), "rule", t.Rule, "err", err)
			if derr := s.db.Update(func(tx *store.Tx) error { return tx.DeleteTimer(t.Key, t.Rule) }); derr != nil {
				return 0, behind, fmt.Errorf("drop timer %s %s: %w", t.Key, t.Rule, derr)
			}
		}
	}
	return len(taken), behind, nil
}

// fire runs due timers in one transaction: the batch due at now, or only
// the timer one, and none due after the receive time of the oldest
// pending inbox item (returned as behind when before now). taken receives
// the timers the batch read.
func (s *scheduler) fire(now time.Time, one *store.Timer, taken *[]store.Timer) (behind time.Time, err error) {
	var done []store.Timer
	err = s.pipe.inBatch(nil, now, func(bs *batchState) error {
		tx := bs.tx
		upTo := now
		behind = time.Time{}
		oldest, pending, err := tx.OldestPendingInbox()
		if err != nil {
			return err
		}
		if pending && oldest.Before(now) {
			upTo, behind = oldest, oldest
		}
		var due []store.Timer
		if one != nil {
			t, err := tx.Timer(one.Key, one.Rule)
			if err != nil {
				return err
			}
			if t != nil && !t.Due.After(upTo) {
				due = []store.Timer{*t}
			}
		} else {
			if due, err = tx.DueTimers(upTo, s.batch); err != nil {
				return err
			}
			if taken != nil {
				*taken = due
			}
		}
		for _, t := range due {
			if err := s.fireOne(bs, t); err != nil {
				return fmt.Errorf("timer %s %s: %w", t.Key, t.Rule, err)
			}
		}
		done = due
		return nil
	})
	if err != nil {
		return behind, err
	}
	if s.fired != nil {
		at := s.now()
		for _, t := range done {
			s.fired(t, at)
		}
	}
	return behind, nil
}

// fireOne turns one due timer into a timer.fired event for its entity. The
// event carries the rule it is for, the due time as occurred_at and the
// template variables of the entity's last event.
func (s *scheduler) fireOne(bs *batchState, t store.Timer) error {
	snap, err := bs.snapshot(t.Key)
	if err != nil {
		return err
	}
	if snap == nil { // the entity is gone: nothing to re-check
		return bs.tx.DeleteTimer(t.Key, t.Rule)
	}
	bs.tally.timer(t.Due)
	vars, err := bs.tx.LastEventVars(snap)
	if err != nil {
		return err
	}
	ev := &event.Event{
		ID:         s.pipe.ids.New(bs.now),
		Connector:  t.Key.Connector,
		Type:       event.TypeTimerFired,
		Entity:     t.Key.Entity,
		Reference:  t.Key.Reference,
		OccurredAt: t.Due,
		ReceivedAt: bs.now,
		Actor:      event.Actor{Type: event.ActorSystem, Name: "scheduler"},
		Fields:     map[string]any{},
		Vars:       vars,
		Rule:       t.Rule,
	}
	_, err = s.pipe.handleEvent(bs, ev, "")
	return err
}

// OnTimerFired sets a function the scheduler tells of every timer it fired
// and when the transaction that fired it committed (firing-lag
// measurements). Set it before Run; nil removes it.
func (s *Server) OnTimerFired(fn func(t store.Timer, firedAt time.Time)) {
	s.sched.fired = fn
}
