package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/internal/bug"
	"github.com/hookline/hookline/store"
)

// Dispatcher defaults.
const (
	defaultWorkers      = 32
	defaultMaxIdle      = time.Second
	defaultDrainTimeout = 10 * time.Second
	// maxFinishBatch is the most outcomes one FinishDeliveries call holds.
	maxFinishBatch = 1000
	// prefetchFactor x Workers is the most deliveries claimed at once (in
	// flight or waiting for a worker); maxClaim caps it (one claim
	// transaction takes at most 1000).
	prefetchFactor = 16
	maxClaim       = 1000
	// finishRetries is how often a failed outcome write is tried again.
	finishRetries = 3
	// Under load, outcomes wait up to finishLinger, unless
	// finishLingerBatch of them are in, before a transaction records them
	// (when there is nothing to claim). Each transaction is two fsyncs
	// holding bbolt's only writer, which the pipeline needs too: one
	// transaction for many outcomes instead of one for every few. "Under
	// load" is: the previous transaction recorded at least
	// finishLingerMin outcomes. Only the next delivery of the same
	// reference waits for it (ordering holds it back until its predecessor
	// is recorded), so a quiet gateway never lingers.
	finishLinger      = 10 * time.Millisecond
	finishLingerBatch = 256
	finishLingerMin   = 8
	// A call_webhook target (one per connector and destination host) that
	// has had no delivery for webhookIdle, and whose breaker is closed,
	// is dropped, at most every webhookSweepEvery, when a new one is made:
	// destinations come and go (every REST-hook subscription has its own),
	// and each target holds a transport with its idle connections.
	webhookIdle       = time.Hour
	webhookSweepEvery = time.Minute
)

// Config configures a Dispatcher. The zero value works with defaults.
type Config struct {
	// Workers is how many sends run at once (default 32).
	Workers int
	// LogDir is the root of log actions' files; paths must stay inside it.
	// Empty: log deliveries fail with ErrNoLogDir.
	LogDir string
	// EgressAllow lists prefixes the egress guard lets through.
	EgressAllow []netip.Prefix
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives delivery logs (nil: discarded).
	Logger *slog.Logger
	// Registerer registers the delivery metrics (nil: no metrics).
	Registerer prometheus.Registerer
	// OnGone is called after a 410 Gone was recorded (the gateway removes the
	// REST-hook subscription). It runs on the goroutine that commits
	// outcomes: keep it short.
	OnGone func(d *store.Delivery)
	// Withdrawn, when set, is asked before each send: a non-empty answer
	// (why) cancels the delivery with that reason instead of sending it
	// (the gateway withdraws deliveries of a REST-hook subscription that
	// was removed while they waited or were in flight).
	Withdrawn func(d *store.Delivery) string
	// MaxIdle is the longest sleep between store polls (default 1s).
	MaxIdle time.Duration
	// Rand is the jitter source, in [0, 1), safe for concurrent use
	// (default math/rand/v2).
	Rand func() float64
	// DrainTimeout is how long Run waits for in-flight sends once its
	// context is done (default 10s); sends still running then are
	// interrupted and go back to the outbox uncharged.
	DrainTimeout time.Duration
}

// Dispatcher sends due deliveries of the outbox. Create it with New and
// start it with Run; Notify and SetOutbounds are safe at any time.
type Dispatcher struct {
	db      *store.DB
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu      sync.RWMutex
	targets map[string]*target
	// webhooks are the targets of call_webhook deliveries (rules' and
	// REST hooks'), one per connector and destination host: a third-party
	// URL has limits and a breaker of its own, apart from the platform
	// the rule's connector talks to and from other destinations.
	webhooks map[webhookKey]*target
	// webhooksSwept is when webhooks was last swept for idle targets.
	webhooksSwept time.Time

	wake     chan struct{}
	inflight atomic.Int64 // sends running
	// outstanding counts claimed deliveries whose outcome the loop has not
	// received yet (queued for a worker or being sent), plus room reserved
	// for claims under way (reserve). It never exceeds the claim-ahead
	// bound, so handing a claimed delivery to the work channel never blocks.
	outstanding atomic.Int64
	running     atomic.Bool

	// hand is how deliveries claimed by someone else (the pipeline claims
	// a new delivery as it writes it: store.Tx.AddDeliveryClaimed) reach
	// the workers while Run runs.
	hand struct {
		mu       sync.RWMutex
		work     chan<- *store.Delivery // nil while Run is not running
		maxAhead int
	}

	// sendHook, when set (tests), is called with each delivery as it is
	// sent: tests make it panic to stand for a bug that a delivery
	// triggers.
	sendHook func(del *store.Delivery)
}

// New returns a Dispatcher for db's outbox sending through outbounds.
func New(db *store.DB, outbounds map[string]*connectors.Outbound, cfg Config) (*Dispatcher, error) {
	if db == nil {
		return nil, fmt.Errorf("new dispatcher: nil store: %w", ErrConfig)
	}
	if cfg.Workers < 0 || cfg.MaxIdle < 0 || cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("new dispatcher: negative workers, max idle or drain timeout: %w", ErrConfig)
	}
	if cfg.Workers == 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = defaultMaxIdle
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = defaultDrainTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	allow := make([]netip.Prefix, 0, len(cfg.EgressAllow))
	for _, p := range cfg.EgressAllow {
		if !p.IsValid() {
			return nil, fmt.Errorf("new dispatcher: egress allow prefix %v is not valid: %w", p, ErrConfig)
		}
		allow = append(allow, p.Masked())
	}
	cfg.EgressAllow = allow
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, logDirMode); err != nil {
			return nil, fmt.Errorf("new dispatcher: log directory %s: %w", cfg.LogDir, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new dispatcher: %w", err)
	}
	d := &Dispatcher{
		db:       db,
		cfg:      cfg,
		log:      log,
		metrics:  m,
		targets:  make(map[string]*target, len(outbounds)),
		webhooks: make(map[webhookKey]*target),
		wake:     make(chan struct{}, 1),
	}
	d.webhooksSwept = cfg.Now()
	d.SetOutbounds(outbounds)
	return d, nil
}

// CountFailed counts n deliveries of connector that failed without being
// sent (the gateway stores a delivery whose request cannot be built as
// failed at once) under hookline_deliveries_total{outcome="failed"}, as
// the dispatcher counts its own failures.
func (d *Dispatcher) CountFailed(connector string, n int) {
	if d.metrics != nil && n > 0 {
		d.metrics.deliveries.WithLabelValues(connector, outcomeFailed).Add(float64(n))
	}
}

// Notify tells the dispatcher new deliveries were written. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Reserve reserves room for up to n deliveries that the caller is about to
// claim itself (store.Tx.AddDeliveryClaimed) and hand over with Submit. It
// returns how many it may claim: 0 when Run is not running or the workers
// already have as much claimed work ahead as they may. Room the caller
// does not use (a claim that did not happen, a transaction that did not
// commit) goes back with Release.
func (d *Dispatcher) Reserve(n int) int {
	d.hand.mu.RLock()
	defer d.hand.mu.RUnlock()
	if d.hand.work == nil {
		return 0
	}
	return d.reserve(d.hand.maxAhead, n)
}

// reserve adds up to n to outstanding without passing maxAhead, and
// returns how much it added.
func (d *Dispatcher) reserve(maxAhead, n int) int {
	for n > 0 {
		cur := d.outstanding.Load()
		take := min(int64(n), int64(maxAhead)-cur)
		if take <= 0 {
			return 0
		}
		if d.outstanding.CompareAndSwap(cur, cur+take) {
			return int(take)
		}
	}
	return 0
}

// Release gives back n of the room Reserve returned.
func (d *Dispatcher) Release(n int) {
	if n > 0 {
		d.outstanding.Add(-int64(n))
		d.Notify()
	}
}

// Submit hands deliveries the caller claimed (in flight in the store, after
// its transaction committed) to the workers, using room from Reserve: one
// unit per delivery. If Run stopped in between, they are put back pending,
// uncharged, like claimed work at shutdown.
func (d *Dispatcher) Submit(dels []*store.Delivery) {
	if len(dels) == 0 {
		return
	}
	d.hand.mu.RLock()
	if work := d.hand.work; work != nil {
		for _, del := range dels {
			work <- del // never blocks: the room was reserved
		}
		d.hand.mu.RUnlock()
		return
	}
	d.hand.mu.RUnlock()
	back := make([]outcome, len(dels))
	for i, del := range dels {
		back[i] = d.interrupted(del)
	}
	d.outstanding.Add(-int64(len(dels)))
	d.writeOutcomes(back)
}

// SetOutbounds replaces the outbound connectors (config reload). Limits,
// breakers and in-flight counts of connectors that stay carry over; sends
// under way finish with the settings they started with.
func (d *Dispatcher) SetOutbounds(m map[string]*connectors.Outbound) {
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, t := range d.targets {
		if _, ok := m[name]; !ok && t.config().out != nil {
			delete(d.targets, name)
			t.config().transport.CloseIdleConnections()
		}
	}
	for name, out := range m {
		if out == nil {
			continue
		}
		if t, ok := d.targets[name]; ok {
			t.configure(out, d.cfg.EgressAllow, d.cfg.Rand, d.cfg.Now, now)
			continue
		}
		d.targets[name] = newTarget(name, out, d.cfg.EgressAllow, d.cfg.Rand, d.cfg.Now, now)
	}
	for k, t := range d.webhooks {
		t.configure(webhookOutbound(m[k.connector]), d.cfg.EgressAllow, d.cfg.Rand, d.cfg.Now, now)
	}
	d.Notify()
}

// webhookKey names the target of call_webhook deliveries: the connector
// they go out under and the host (with port) of their URL.
type webhookKey struct {
	connector, host string
}

// webhookOutbound is the configuration of the call_webhook targets of
// connector out (nil: not configured): default limits, retries, timeout
// and breaker, which are the platform's, not the third party's, and the
// connector's egress policy (allow_private), which is the operator's.
func webhookOutbound(out *connectors.Outbound) *connectors.Outbound {
	if out == nil || !out.AllowPrivate {
		return nil
	}
	return &connectors.Outbound{Name: out.Name, AllowPrivate: true}
}

// CheckEgress reports whether the egress guard lets deliveries of
// connector reach host (a URL's host, without port), by the policy those
// deliveries are sent with: the connector's allow_private when it is
// configured, and the egress allow list in force. A name is resolved (see
// CheckEgressHost); a refusal is an *EgressError.
func (d *Dispatcher) CheckEgress(ctx context.Context, connector, host string) error {
	allowPrivate := false
	d.mu.RLock()
	t := d.targets[connector]
	d.mu.RUnlock()
	if t != nil {
		if out := t.config().out; out != nil {
			allowPrivate = out.AllowPrivate
		}
	}
	return CheckEgressHost(ctx, nil, host, allowPrivate, d.cfg.EgressAllow)
}

// targetFor returns the target a delivery goes through. A call_webhook
// delivery goes through the target of its connector and destination host
// (webhookTarget): the caller gives it back with release when the
// delivery is done with it. Another one whose connector is not configured
// (no action, Action "") gets default settings.
func (d *Dispatcher) targetFor(del *store.Delivery) (*target, error) {
	if del.Update.Kind == event.KindCallWebhook {
		return d.webhookTarget(del), nil
	}
	d.mu.RLock()
	t := d.targets[del.Connector]
	d.mu.RUnlock()
	webhook := isWebhook(del)
	if t != nil && (webhook || t.config().out != nil) {
		return t, nil
	}
	if !webhook {
		return nil, fmt.Errorf("%w %q", ErrUnknownConnector, del.Connector)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.targets[del.Connector]; t != nil {
		return t, nil
	}
	t = newTarget(del.Connector, nil, d.cfg.EgressAllow, d.cfg.Rand, d.cfg.Now, d.cfg.Now())
	d.targets[del.Connector] = t
	return t, nil
}

// webhookTarget returns the target of a call_webhook delivery, made on
// first use: one per connector and host of the URL, with the settings of
// webhookOutbound. It is acquired for the delivery (release it when done):
// under d.mu, so that a sweep never drops a target just handed out.
func (d *Dispatcher) webhookTarget(del *store.Delivery) *target {
	k := webhookKey{connector: del.Connector, host: webhookHost(del.Request.URL)}
	d.mu.RLock()
	t := d.webhooks[k]
	if t != nil {
		t.acquire()
	}
	d.mu.RUnlock()
	if t != nil {
		return t
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.webhooks[k]; t != nil {
		t.acquire()
		return t
	}
	now := d.cfg.Now()
	d.sweepWebhooksLocked(now)
	var out *connectors.Outbound
	if c := d.targets[del.Connector]; c != nil {
		out = c.config().out
	}
	t = newTarget(del.Connector, webhookOutbound(out), d.cfg.EgressAllow, d.cfg.Rand, d.cfg.Now, now)
	t.webhook = true
	t.acquire()
	d.webhooks[k] = t
	return t
}

// sweepWebhooksLocked drops the call_webhook targets idle for webhookIdle
// (target.idleFor), closing their idle connections, unless the last sweep
// was less than webhookSweepEvery ago (d.mu held for writing). A
// destination used again later gets a new target.
func (d *Dispatcher) sweepWebhooksLocked(now time.Time) {
	if now.Sub(d.webhooksSwept) < webhookSweepEvery {
		return
	}
	d.webhooksSwept = now
	for k, t := range d.webhooks {
		if t.idleFor(now, webhookIdle) {
			delete(d.webhooks, k)
			t.config().transport.CloseIdleConnections()
		}
	}
}

// webhookHost is the host, with its port when the URL has one, of a
// call_webhook's URL, in lower case ("" when it has none: the send fails).
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// isWebhook reports whether del is a call_webhook delivery (no action, no auth).
func isWebhook(del *store.Delivery) bool {
	return del.Update.Kind == event.KindCallWebhook || del.Action == ""
}

// isLog reports whether del is a log delivery.
func isLog(del *store.Delivery) bool {
	return del.Request.Method == logMethod || del.Action == logAction || del.Update.Kind == event.KindLog
}

// outcome is one result on its way to the store.
type outcome struct {
	finish store.Finish
	del    *store.Delivery
	gone   bool
}

// Run sends due deliveries until ctx is done, then waits for in-flight
// sends (at most DrainTimeout, then interrupts them) and for their outcomes
// to be written. It returns nil after ctx is done, or the store error that
// stopped it. Run may be called once (ErrRunning after).
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return fmt.Errorf("run dispatcher: %w", ErrRunning)
	}
	sendCtx, interrupt := context.WithCancel(context.WithoutCancel(ctx))
	defer interrupt()
	maxAhead := min(prefetchFactor*d.cfg.Workers, maxClaim)
	results := make(chan outcome, maxAhead+d.cfg.Workers)
	work := make(chan *store.Delivery, maxAhead)
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, sendCtx, work, results)
		}()
	}
	d.hand.mu.Lock()
	d.hand.work, d.hand.maxAhead = work, maxAhead
	d.hand.mu.Unlock()
	err := d.loop(ctx, work, results, maxAhead)
	d.hand.mu.Lock()
	d.hand.work = nil // Submit writes back from now on
	d.hand.mu.Unlock()
	close(work)

	// Shutting down: outcomes of the sends still running (and of the
	// claimed deliveries no worker took, given back uncharged) are written
	// as they come.
	collected := make(chan struct{})
	go d.collect(results, collected)
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	timer := time.NewTimer(d.cfg.DrainTimeout)
	select {
	case <-drained:
	case <-timer.C:
		d.log.Warn("delivery: interrupting sends still running at shutdown", "in_flight", d.inflight.Load())
		interrupt()
		<-drained
	}
	timer.Stop()
	close(results)
	<-collected
	return err
}

// work is one worker: it sends the claimed deliveries it takes from work
// and hands each outcome to the loop. Once ctx is done it sends nothing
// more: what it still takes goes back to the outbox, uncharged.
func (d *Dispatcher) work(ctx, sendCtx context.Context, work <-chan *store.Delivery, results chan<- outcome) {
	for del := range work {
		var o outcome
		if ctx.Err() != nil {
			o = d.interrupted(del)
		} else {
			d.inflight.Add(1)
			o = d.deliver(ctx, sendCtx, del)
			d.inflight.Add(-1)
		}
		d.outstanding.Add(-1)
		results <- o
		d.Notify()
	}
}

// loop is the dispatcher's one store writer while it runs: each turn it
// records the outcomes that arrived and claims due deliveries, in ONE
// transaction (store.DB.FinishAndClaim), and hands the claimed ones to the
// workers. Whatever arrives during a transaction goes into the next one,
// so under load batches grow instead of transactions.
//
// It claims ahead: up to maxAhead deliveries may be claimed (in flight in
// the store) and not yet finished, the ones no worker has taken yet
// waiting in the work channel. bbolt's single writer is shared with the
// pipeline, whose transactions can be long; the workers keep sending while
// the loop waits for its next turn. Outcomes still held when ctx ends are
// written before it returns.
func (d *Dispatcher) loop(ctx context.Context, work chan<- *store.Delivery, results chan outcome, maxAhead int) error {
	// Since Go 1.23 Reset and Stop discard a pending tick: no draining.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var batch []outcome // outcomes for the next transaction
	// sleep waits for a wake-up, an outcome (kept in batch) or the timer.
	sleep := func(wait time.Duration) bool {
		timer.Reset(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-d.wake:
		case o := <-results:
			batch = append(batch, o)
		case <-timer.C:
		}
		return true
	}
	fins := make([]store.Finish, 0, maxFinishBatch)
	var oldest time.Time // when the first outcome of batch arrived
	busy := false        // the last transaction recorded finishLingerMin outcomes or more
	for ctx.Err() == nil {
		if len(batch) == 0 {
			oldest = time.Time{}
		}
		batch = drainOutcomes(batch, results)
		if len(batch) > 0 && oldest.IsZero() {
			oldest = time.Now()
		}
		now := d.cfg.Now()
		claim, wait := 0, d.cfg.MaxIdle
		if room := maxAhead - int(d.outstanding.Load()); room > 0 { // a peek; reserve below
			// A read transaction first: a write transaction (an fsync) is
			// too dear for a wake-up that finds nothing due.
			next, ok, err := d.db.NextDeliveryDue()
			switch {
			case errors.Is(err, store.ErrClosed):
				d.writeOutcomes(batch)
				return fmt.Errorf("delivery loop: %w", err)
			case err != nil:
				d.log.Error("delivery: next due delivery", "err", err)
			case ok && !next.After(now):
				claim = room
			case ok:
				wait = min(wait, max(next.Sub(now), time.Millisecond))
			}
		}
		// Reserve the room first: Submit may take some of it meanwhile.
		claim = d.reserve(maxAhead, claim)
		if len(batch) == 0 && claim == 0 {
			if !sleep(wait) {
				break
			}
			continue
		}
		if claim == 0 && busy && len(batch) < finishLingerBatch {
			batch = d.linger(ctx, timer, results, batch, oldest.Add(finishLinger))
		}
		n := min(len(batch), maxFinishBatch)
		fins = fins[:0]
		for _, o := range batch[:n] {
			fins = append(fins, o.finish)
		}
		claimed, err := d.db.FinishAndClaim(fins, now, claim)
		busy = n >= finishLingerMin
		if unused := claim - len(claimed); unused > 0 {
			d.outstanding.Add(-int64(unused))
		}
		switch {
		case err == nil:
		case errors.Is(err, store.ErrState) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
			// Some outcomes were refused (the delivery is no longer in
			// flight); the others and the claim stand.
			d.log.Warn("delivery: outcomes not recorded", "err", err)
		case errors.Is(err, store.ErrClosed):
			d.writeOutcomes(batch)
			return fmt.Errorf("delivery loop: %w", err)
		default:
			// A storage error: nothing was written or claimed. Record the
			// outcomes on their own, with retries.
			d.log.Error("delivery: finish and claim", "err", err)
			d.writeFinishes(fins)
		}
		d.afterFinish(batch[:n])
		batch = append(batch[:0], batch[n:]...)
		// The channel holds maxAhead and the claims were reserved: this
		// never blocks.
		for _, del := range claimed {
			work <- del
		}
	}
	d.writeOutcomes(batch)
	return nil
}

// linger adds outcomes to batch as they arrive, until the deadline, until
// batch holds finishLingerBatch, or until ctx ends. A wake-up (a new due
// delivery) stays pending for the loop's next turn.
func (d *Dispatcher) linger(ctx context.Context, timer *time.Timer, results <-chan outcome, batch []outcome, deadline time.Time) []outcome {
	for len(batch) < finishLingerBatch {
		left := time.Until(deadline)
		if left <= 0 {
			return batch
		}
		timer.Reset(left)
		select {
		case <-ctx.Done():
			timer.Stop()
			return batch
		case o := <-results:
			timer.Stop()
			batch = append(batch, o)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// drainOutcomes appends the outcomes waiting in results, without blocking.
func drainOutcomes(batch []outcome, results <-chan outcome) []outcome {
	for {
		select {
		case o := <-results:
			batch = append(batch, o)
		default:
			return batch
		}
	}
}

// writeOutcomes records outcomes without claiming (shutdown, errors).
func (d *Dispatcher) writeOutcomes(batch []outcome) {
	for len(batch) > 0 {
		n := min(len(batch), maxFinishBatch)
		fins := make([]store.Finish, 0, n)
		for _, o := range batch[:n] {
			fins = append(fins, o.finish)
		}
		d.writeFinishes(fins)
		d.afterFinish(batch[:n])
		batch = batch[n:]
	}
}

// afterFinish runs what follows recorded outcomes: OnGone for targets that
// answered 410.
func (d *Dispatcher) afterFinish(batch []outcome) {
	for _, o := range batch {
		if o.gone && d.cfg.OnGone != nil {
			del := *o.del
			del.Attempts = append(slicesClone(del.Attempts), *o.finish.Attempt)
			del.State = o.finish.State
			del.Reason = o.finish.Reason
			d.cfg.OnGone(&del)
		}
	}
}

// deliver checks a claimed delivery's limits and sends it, on the
// calling worker, and returns its outcome; a delivery that has to wait
// goes back to the outbox.
func (d *Dispatcher) deliver(ctx, sendCtx context.Context, del *store.Delivery) outcome {
	if d.cfg.Withdrawn != nil {
		if why := d.cfg.Withdrawn(del); why != "" {
			d.metrics.outcome(del.Connector, outcomeCancelled)
			d.log.Info("delivery: withdrawn", "delivery", del.ID, "connector", del.Connector, "reason", why)
			return outcome{del: del, finish: store.Finish{ID: del.ID, State: store.DeliveryCancelled, Reason: why}}
		}
	}
	if isLog(del) {
		return d.deliverLog(del)
	}
	t, err := d.targetFor(del)
	if err != nil {
		d.metrics.outcome(del.Connector, outcomeFailed)
		d.log.Warn("delivery: failed", "delivery", del.ID, "rule", del.RuleID, "event", del.EventID, "connector", del.Connector, "reason", err.Error())
		return outcome{del: del, finish: store.Finish{ID: del.ID, State: store.DeliveryFailed, Reason: err.Error()}}
	}
	if t.webhook {
		defer func() { t.release(d.cfg.Now()) }()
	}
	now := d.cfg.Now()
	switch adm := t.admit(now); {
	case adm.ok:
		return d.deliverHTTP(sendCtx, t, adm, del)
	case adm.full:
		return d.awaitSlot(ctx, sendCtx, t, del, adm)
	default:
		return d.throttled(del, now, adm)
	}
}

// throttled puts a delivery back in the outbox, due after the wait, with
// no attempt recorded.
func (d *Dispatcher) throttled(del *store.Delivery, now time.Time, adm admission) outcome {
	d.metrics.outcome(del.Connector, outcomeThrottled)
	return outcome{del: del, finish: store.Finish{
		ID: del.ID, State: store.DeliveryPending, NextAt: now.Add(adm.wait), Reason: adm.reason,
	}}
}

// awaitSlot waits on the worker for a concurrency slot of the delivery's
// connector (at most maxSlotWait, in the connector's queue of waiters),
// then sends it, or puts it back in the outbox when the wait ran out,
// another limit says wait, or the dispatcher is stopping (ctx: a delivery
// that has not started does not start then; sends use sendCtx).
func (d *Dispatcher) awaitSlot(ctx, sendCtx context.Context, t *target, del *store.Delivery, adm admission) outcome {
	w := t.queueSlot()
	timer := time.NewTimer(maxSlotWait)
	defer timer.Stop()
	select {
	case <-w.ready:
	case <-timer.C:
		if !t.leaveSlot(w, true) {
			return d.throttled(del, d.cfg.Now(), adm)
		}
	case <-ctx.Done():
		t.leaveSlot(w, false)
		return d.interrupted(del)
	}
	if ctx.Err() != nil { // granted as the dispatcher stops: do not start
		t.leaveSlot(w, false)
		return d.interrupted(del)
	}
	now := d.cfg.Now()
	if adm = t.admitGranted(now); !adm.ok {
		return d.throttled(del, now, adm)
	}
	return d.deliverHTTP(sendCtx, t, adm, del)
}

// deliverHTTP sends one delivery through its connector and decides its
// outcome. The concurrency slot taken by admit (adm) is given back here.
func (d *Dispatcher) deliverHTTP(ctx context.Context, t *target, adm admission, del *store.Delivery) (o outcome) {
	cfg := adm.cfg
	v := verdictNeutral
	var latency time.Duration
	defer func() {
		open := t.done(d.cfg.Now(), adm.ticket, v, latency)
		if !t.webhook { // the gauge is the connector's own breaker
			d.metrics.breaker(t.name, open)
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			pe := bug.Recovered("sending", p).Log(d.log, "delivery", del.ID)
			o = outcome{del: del, finish: store.Finish{ID: del.ID, State: store.DeliveryFailed, Reason: pe.Error()}}
			d.metrics.outcome(t.name, outcomeFailed)
		}
	}()
	if d.sendHook != nil {
		d.sendHook(del)
	}
	started := d.cfg.Now()
	r := outRequest{
		method:     del.Request.Method,
		url:        del.Request.URL,
		headers:    del.Request.Headers,
		body:       del.Request.Body,
		deliveryID: del.ID,
		hops:       del.Hops,
	}
	var act *connectors.Action
	var auth authorizer
	if cfg.out != nil {
		if !isWebhook(del) {
			r.action = del.Action
			act = cfg.out.Actions[del.Action]
		}
		auth = cfg.out.Authorize
	}
	if act != nil {
		r.success = act.Success
		r.capture = act.ReadsBody()
	}
	// An error code worth retrying may stand past the first 4 KiB.
	r.capture = r.capture || cfg.retry.RetryErrors != nil
	res := send(ctx, cfg.client, r, auth, started)
	d.metrics.observe(t.name, res.latency.Seconds())
	latency = res.latency
	if res.err != nil && ctx.Err() != nil {
		return d.interrupted(del)
	}
	var o2 outcome
	o2, v = d.decide(del, cfg, act, res, started)
	d.metrics.outcome(t.name, metricOutcome(o2))
	return o2
}

// interrupted puts a delivery whose send was cut short by shutdown back in
// the outbox, due now, with no attempt recorded.
func (d *Dispatcher) interrupted(del *store.Delivery) outcome {
	d.metrics.outcome(del.Connector, outcomeInterrupted)
	return outcome{del: del, finish: store.Finish{ID: del.ID, State: store.DeliveryPending,
		NextAt: d.cfg.Now(), Reason: "interrupted by shutdown; not counted as an attempt"}}
}

// metricOutcome is the metrics label of an outcome.
func metricOutcome(o outcome) string {
	switch o.finish.State {
	case store.DeliverySucceeded:
		return outcomeSucceeded
	case store.DeliveryPending:
		return outcomeRetry
	}
	return outcomeFailed
}

// decide turns a send's result into the delivery's next state and says how
// it counts for the breaker.
func (d *Dispatcher) decide(del *store.Delivery, cfg *targetConfig, act *connectors.Action, res httpResult, started time.Time) (outcome, verdict) {
	now := d.cfg.Now()
	att := &store.Attempt{At: started, Status: res.status, LatencyMS: float64(res.latency.Microseconds()) / 1000}
	o := outcome{del: del, finish: store.Finish{ID: del.ID, Attempt: att}}
	tries := ""
	if res.tries > 1 {
		tries = fmt.Sprintf(" (%d tries)", res.tries)
	}
	if res.status != 0 {
		att.Response = responseText(res.body)
	}
	var perm *permanentError
	switch {
	case errors.As(res.err, &perm):
		att.Error = res.err.Error()
		d.fail(&o, res.err.Error())
		return o, verdictNeutral
	case errors.Is(res.err, ErrEgressRefused):
		var ee *EgressError
		msg := res.err.Error()
		if errors.As(res.err, &ee) {
			msg = ee.Error()
		}
		att.Error = msg
		d.fail(&o, msg)
		return o, verdictNeutral
	case res.err != nil:
		att.Error = res.err.Error() + tries
		d.retry(&o, cfg.retry, nil, att.Error, now)
		return o, verdictFailure
	}
	v := verdictSuccess
	if connectorFailure(res.status) {
		v = verdictFailure
	}
	status := fmt.Sprintf("HTTP %d %s", res.status, http.StatusText(res.status))
	var success []int
	if act != nil {
		success = act.Success
	}
	switch classify(res.status, success, cfg.retry.RetryOn) {
	case classSuccess:
		if res.bodyErr != nil {
			// The target acted (it said so) but its answer was cut off:
			// sending again could act twice. A success_when check cannot
			// be made: the delivery fails, not retried, for a person to
			// look at; captures are missing: it succeeds without them.
			att.Error = status + ": " + res.bodyErr.Error()
			if act != nil && act.SuccessWhen != nil {
				d.fail(&o, "answered "+status+" but the body to check success_when in was cut off (not retried: the target may have acted): "+res.bodyErr.Error())
				return o, v
			}
			o.finish.State = store.DeliverySucceeded
			d.log.Warn("delivery: succeeded, but the response body to capture from was cut off", "delivery", del.ID, "connector", del.Connector, "err", res.bodyErr)
			break
		}
		if act != nil && act.SuccessWhen != nil {
			// A success status whose body says the call failed (Slack's
			// 200 {"ok": false}). The target answered: a failure it calls
			// temporary (retry_errors) counts against the breaker like a
			// 5xx; any other is a refusal, like a 4xx, and is dead at once.
			if bv := act.SuccessWhen.Check(res.body); !bv.OK {
				att.Error = status + ": " + bv.Reason
				if bv.Retry {
					d.retry(&o, cfg.retry, &res, bv.Reason, now)
					return o, verdictFailure
				}
				d.fail(&o, bv.Reason)
				return o, v
			}
		}
		o.finish.State = store.DeliverySucceeded
		if act != nil && len(act.Capture) > 0 {
			o.finish.Captured = capture(res.body, act.Capture)
		}
		d.log.Debug("delivery: succeeded", "delivery", del.ID, "connector", del.Connector, "status", res.status)
	case classGone:
		att.Error = status
		d.fail(&o, "target gone (410): subscription disabled")
		o.gone = true
	case classRedirect:
		att.Error = status
		d.fail(&o, fmt.Sprintf("redirect not followed (Location: %s)", res.header.Get("Location")))
	case classRetry:
		att.Error = status + tries
		d.retry(&o, cfg.retry, &res, att.Error, now)
	default:
		att.Error = status
		if code, ok := cfg.retry.RetryErrors.Retry(res.body); ok {
			// A refusal the platform calls temporary by its error code
			// (WhatsApp's 400 with 130429 when throttled): retried, and
			// counted against the breaker like a 429.
			att.Error = status + ": error " + code
			d.retry(&o, cfg.retry, &res, att.Error, now)
			return o, verdictFailure
		}
		d.fail(&o, "rejected: "+status)
	}
	return o, v
}

// fail makes o a permanent failure.
func (d *Dispatcher) fail(o *outcome, reason string) {
	o.finish.State = store.DeliveryFailed
	o.finish.Reason = reason
	d.log.Warn("delivery: failed", "delivery", o.del.ID, "rule", o.del.RuleID, "event", o.del.EventID, "connector", o.del.Connector, "reason", reason)
}

// retry schedules the next durable attempt of o, or gives up: by the
// attempts made since the last retry by hand, and, when the target
// answered (res), by its status and Retry-After.
func (d *Dispatcher) retry(o *outcome, p connectors.RetryPolicy, res *httpResult, why string, now time.Time) {
	n := o.del.AttemptsSinceRetry()
	var (
		status int
		ra     time.Duration
		hasRA  bool
	)
	if res != nil && res.status != 0 {
		status = res.status
		ra, hasRA = parseRetryAfter(res.header.Get("Retry-After"), now)
	}
	dec := nextRetry(p, n, status, ra, hasRA, d.cfg.Rand())
	if dec.giveUp {
		d.fail(o, fmt.Sprintf("gave up after %d attempts: %s", n+1, why))
		return
	}
	o.finish.State = store.DeliveryPending
	o.finish.NextAt = now.Add(dec.wait)
	o.finish.Reason = "retrying: " + why
	d.log.Info("delivery: will retry", "delivery", o.del.ID, "connector", o.del.Connector,
		"attempt", n+1, "in", dec.wait, "error", why)
}

// capture extracts values from a JSON response body by gjson path.
func capture(body []byte, paths map[string]string) map[string]string {
	out := make(map[string]string, len(paths))
	for name, path := range paths {
		if r := gjson.GetBytes(body, path); r.Exists() {
			out[name] = r.String()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// deliverLog appends a log delivery's line to its file.
func (d *Dispatcher) deliverLog(del *store.Delivery) outcome {
	started := d.cfg.Now()
	t0 := time.Now()
	err := appendLog(d.cfg.LogDir, del.Request.URL, del.Request.Body)
	att := &store.Attempt{At: started, LatencyMS: float64(time.Since(t0).Microseconds()) / 1000}
	o := outcome{del: del, finish: store.Finish{ID: del.ID, Attempt: att}}
	switch {
	case err == nil:
		o.finish.State = store.DeliverySucceeded
	case errors.Is(err, ErrLogPath) || errors.Is(err, ErrNoLogDir):
		att.Error = err.Error()
		d.fail(&o, err.Error())
	default:
		att.Error = err.Error()
		p := retryPolicy(connectors.RetryPolicy{})
		d.mu.RLock()
		if t := d.targets[del.Connector]; t != nil {
			p = t.config().retry
		}
		d.mu.RUnlock()
		d.retry(&o, p, nil, att.Error, d.cfg.Now())
	}
	d.metrics.outcome(del.Connector, metricOutcome(o))
	return o
}

// collect writes outcomes to the store in batches while Run shuts down:
// whatever arrived while the previous batch was being written goes in the
// next transaction.
func (d *Dispatcher) collect(in <-chan outcome, done chan<- struct{}) {
	defer close(done)
	batch := make([]outcome, 0, maxFinishBatch)
	for o := range in {
		batch = append(batch[:0], o)
	drain:
		for len(batch) < maxFinishBatch {
			select {
			case o, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		d.writeOutcomes(batch)
	}
}

// writeFinishes records outcomes, trying a storage error again a few times.
// Outcomes the store refuses (the delivery is no longer in flight) are
// logged and dropped.
func (d *Dispatcher) writeFinishes(fins []store.Finish) {
	for try := 0; ; try++ {
		err := d.db.FinishDeliveries(fins)
		if err == nil {
			return
		}
		if errors.Is(err, store.ErrState) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			d.log.Warn("delivery: outcomes not recorded", "err", err)
			return
		}
		if errors.Is(err, store.ErrClosed) || try >= finishRetries {
			// The deliveries stay in flight; the store recovers them as
			// pending when it is opened again.
			d.log.Error("delivery: recording outcomes failed", "count", len(fins), "err", err)
			return
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
	}
}

// slicesClone copies attempts so OnGone cannot alias the outcome's.
func slicesClone(a []store.Attempt) []store.Attempt {
	return append([]store.Attempt(nil), a...)
}
