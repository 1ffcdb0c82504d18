package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/internal/bug"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/rules"
	"github.com/hookline/hookline/store"
)

// Options configure a Server. Zero values take the defaults of gateway.yaml.
type Options struct {
	ConfigPath string       // gateway.yaml or the directory holding it
	Listen     string       // overrides gateway.yaml's listen
	DataDir    string       // overrides gateway.yaml's data_dir
	Env        yamlconf.Env // environment for ${VAR} (os.LookupEnv when nil)
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time
	// Watch reloads the config when its files change.
	Watch bool
}

// Server is a running Hookline: store, pipeline, dispatcher and HTTP app.
type Server struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	bundle   atomic.Pointer[Bundle]
	db       *store.DB
	app      *fiber.App
	pipe     *pipeline
	sched    *scheduler
	retime   *retimer
	disp     *delivery.Dispatcher
	registry *prometheus.Registry
	metrics  *metrics
	replays  *replayGuard // signed requests of timestamp schemes seen lately
	ids      *idGen
	ready    atomic.Bool
	subs     atomic.Pointer[[]store.Subscription]
	subsMu   sync.Mutex   // serializes subscription writes with their reload
	gone     *goneQueue   // subscriptions that answered 410, to remove
	addr     atomic.Value // string
	// limiter holds back repeated warnings about refused requests (see
	// logLimited).
	limiter  *logLimiter
	reloadMu sync.Mutex
	// started is gateway.yaml's File as the gateway started with it, before
	// the command line's overrides: a reload compares its restart-only
	// settings with it.
	started File
	// load reads the config for Reload: Load, which tests replace.
	load func(path string, env yamlconf.Env) (*Bundle, yamlconf.Errors)
}

// New loads and validates the config (an invalid config refuses to start),
// opens the store and builds the HTTP app. Run starts serving.
func New(opts Options) (*Server, error) {
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, errs := Load(opts.ConfigPath, opts.Env)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid config:\n%w", errs)
	}
	started := b.File // as gateway.yaml has it, before the overrides
	if opts.Listen != "" {
		b.File.Listen = opts.Listen
	}
	if opts.DataDir != "" {
		b.File.DataDir = opts.DataDir
	}
	if b.File.Delivery.LogDir == "" {
		b.File.Delivery.LogDir = filepath.Join(b.File.DataDir, "logs")
	}
	s := &Server{opts: opts, log: log, now: opts.Now, registry: prometheus.NewRegistry(), load: Load, replays: newReplayGuard(), started: started,
		gone: newGoneQueue(), limiter: newLogLimiter(time.Minute)}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.registry)
	s.bundle.Store(b)
	for _, w := range b.Warnings {
		log.Warn(w)
	}
	if b.File.AdminToken == "" {
		log.Warn("HOOKLINE_ADMIN_TOKEN is not set: the admin API answers only requests from loopback addresses")
	}

	dbPath := filepath.Join(b.File.DataDir, "hookline.db")
	db, err := store.Open(dbPath, store.Options{Now: opts.Now, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	s.db = db
	s.ids = &idGen{db: db}
	s.registry.MustRegister(newStoreGauges(db))
	if err := s.loadSubscriptions(); err != nil {
		db.Close()
		return nil, err
	}
	s.pipe = &pipeline{db: db, bundle: s.bundle.Load, ids: s.ids, log: log, now: opts.Now,
		wake: make(chan struct{}, 1), batch: 256, metrics: s.metrics, subscriptions: s.subscriptions}
	disp, err := delivery.New(db, outbounds(b), delivery.Config{
		Workers:     b.File.Delivery.Workers,
		LogDir:      b.File.Delivery.LogDir,
		EgressAllow: b.EgressAllow,
		Now:         opts.Now,
		Logger:      log,
		Registerer:  s.registry,
		OnGone:      s.onGone,
		Withdrawn:   s.withdrawn,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("start delivery: %w", err)
	}
	s.disp = disp
	s.pipe.delivered = disp.Notify
	s.pipe.handoff = disp
	s.pipe.deliveriesFailed = disp.CountFailed
	s.sched = newScheduler(s.pipe, log)
	s.pipe.timerArmed = s.sched.armed
	s.pipe.drained = s.sched.inboxMoved
	s.retime = newRetimer(db, log, opts.Now, func() *rules.Set { return s.bundle.Load().Rules }, s.sched.armed)
	if err := s.retime.seed(); err != nil {
		db.Close()
		return nil, fmt.Errorf("record the timing of time-based rules: %w", err)
	}
	s.app = s.newApp(b)
	return s, nil
}

func outbounds(b *Bundle) map[string]*connectors.Outbound {
	m := map[string]*connectors.Outbound{}
	for name, c := range b.Connectors {
		if c.Outbound != nil {
			m[name] = c.Outbound
		}
	}
	return m
}

// App returns the Fiber app (tests drive it with app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Bundle returns the config in force.
func (s *Server) Bundle() *Bundle { return s.bundle.Load() }

// Store returns the server's store.
func (s *Server) Store() *store.DB { return s.db }

// Addr returns the address the server listens on once Run has started.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

func (s *Server) newApp(b *Bundle) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "hookline",
		DisableStartupMessage: true,
		BodyLimit:             readCeiling(b),
		ReadBufferSize:        maxRequestHead,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		// Read and write buffers go back to a pool between requests: a
		// connection that is idle, or has sent nothing yet, holds none of
		// them (measured: about 70 KiB per idle connection otherwise).
		// fasthttp then waits for a new connection's first byte without a
		// deadline: firstRequestDeadline sets ReadTimeout on it.
		ReduceMemoryUsage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			var fe *fiber.Error
			if errors.As(err, &fe) {
				switch fe.Code {
				case fiber.StatusRequestEntityTooLarge:
					return s.errorRefusal(c, fe.Code, "body exceeds the limit of %d bytes", maxBodyLimit(s.bundle.Load()))
				case fiber.StatusRequestHeaderFieldsTooLarge:
					return s.errorRefusal(c, fe.Code, "request line and headers exceed the limit of %d bytes (a GET webhook's query counts: send long data in a POST body)", maxRequestHead)
				}
				return problem(c, fe.Code, "%s", fe.Message)
			}
			if _, ok := bug.As(err); ok { // logged with its stack by recoverPanics
				if connector, ok := s.webhookOf(c, fiber.StatusInternalServerError); ok {
					s.metrics.hook(connector, fiber.StatusInternalServerError)
				}
				return problem(c, fiber.StatusInternalServerError, "internal error; the gateway logged it")
			}
			s.log.Error("request failed", "path", c.Path(), "err", err)
			return problem(c, fiber.StatusInternalServerError, "internal error: %v", err)
		},
	})
	// First in every route's chain: a panic in a handler (a bug that a
	// request triggers) answers that request 500; the gateway goes on.
	app.Use(s.recoverPanics).Name(recoverRoute)
	app.Post("/hooks/:connector", s.handleHook)
	app.Get("/hooks/:connector", s.handleHandshake)
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.handleReady)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
	s.routes(app)
	// The read ceiling follows the config in force: body_limit raised by a
	// reload takes effect without a restart. BodyLimit above is only the
	// fallback of a request this hook does not see.
	app.Server().HeaderReceived = func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
		return fasthttp.RequestConfig{MaxRequestBodySize: readCeiling(s.bundle.Load())}
	}
	return app
}

// errorRefusal answers a request Fiber refused before any handler ran (a
// body beyond the read ceiling, a head over maxRequestHead); a webhook's
// refusal is counted and logged as the intake's own refusals are.
func (s *Server) errorRefusal(c *fiber.Ctx, status int, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	if connector, ok := s.webhookOf(c, status); ok {
		s.hookRefused(c, connector, status, reason)
	}
	return problem(c, status, "%s", reason)
}

// webhookOf says whether a request that failed with status before or in
// its handler was a webhook and, if so, the connector it is counted
// under: the one its /hooks/ path names when the config in force has it,
// else unknownConnector. A request head too large to be read (431) has no
// path to tell: it is counted as a webhook of unknownConnector, since
// webhooks (a GET webhook's long query) are what sends such heads.
func (s *Server) webhookOf(c *fiber.Ctx, status int) (string, bool) {
	rest, isHook := strings.CutPrefix(c.Path(), "/hooks/")
	name, _, _ := strings.Cut(rest, "/")
	if !isHook {
		return unknownConnector, status == fiber.StatusRequestHeaderFieldsTooLarge && c.Path() == "/"
	}
	if conn := s.bundle.Load().Connectors[name]; conn != nil && conn.Inbound != nil {
		return conn.Name, true
	}
	return unknownConnector, true
}

// firstRequestDeadline is a listener whose connections must start their
// first request within timeout (the server's ReadTimeout), after which they
// are closed. With ReduceMemoryUsage, fasthttp reads a new connection's
// first byte before it sets any deadline, so a client that connects and
// sends nothing would hold a descriptor and a goroutine forever. Once the
// byte arrives fasthttp sets its own deadlines: ReadTimeout for the
// request, IdleTimeout between the requests of a keep-alive connection.
type firstRequestDeadline struct {
	net.Listener
	timeout func() time.Duration
}

// Accept returns the next connection with its read deadline set.
func (l firstRequestDeadline) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		d := l.timeout()
		if d <= 0 {
			return c, nil
		}
		if err := c.SetReadDeadline(time.Now().Add(d)); err == nil {
			return c, nil
		}
		c.Close() // closed by the peer already: an error here would stop the server
	}
}

// maxRequestHead is the most a request's line (the URL with its query)
// and headers may take together; larger requests are answered 431. Fiber's
// default, 4 KiB, refused GET webhooks whose query carries a ticket's text
// and posts behind proxies that add tracing headers. It is also the size of
// the read buffer a connection holds while a request is read.
const maxRequestHead = 64 << 10

// recoverRoute names the middleware that recovers handlers' panics.
const recoverRoute = "recover-panics"

// recoverPanics turns a panic in the handlers after it into a *bug.Panic,
// logged here with its stack; the error handler answers 500 without the
// panic's details.
func (s *Server) recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = bug.Recovered("serving "+c.Method()+" "+c.Path(), r).Log(s.log)
		}
	}()
	return c.Next()
}

// maxBodyLimit is the largest limit any connector allows; Fiber refuses
// anything larger before our handler runs, and the handler applies each
// connector's own limit.
func maxBodyLimit(b *Bundle) int {
	limit := int(b.File.BodyLimit)
	for _, c := range b.Connectors {
		if c.Inbound != nil && c.Inbound.BodyLimit > limit {
			limit = c.Inbound.BodyLimit
		}
	}
	return limit
}

// readCeiling is how much Fiber reads before it gives up on a request. It is
// well above every connector's limit so that a body somewhat over a limit is
// read and answered with a clean 413 and its reason by the handler; a
// server that refuses on Content-Length alone closes the connection while
// the client is still writing, and the client sees a reset instead of the
// answer. Only bodies beyond the ceiling get that treatment. It is taken
// from the config in force at each request, so it follows reloads.
func readCeiling(b *Bundle) int {
	return max(4*maxBodyLimit(b), 8<<20)
}

func (s *Server) handleReady(c *fiber.Ctx) error {
	if !s.ready.Load() {
		return problem(c, fiber.StatusServiceUnavailable, "starting")
	}
	st, err := s.db.Stats()
	if err != nil {
		return problem(c, fiber.StatusServiceUnavailable, "store: %v", err)
	}
	if err := s.db.IntakeHealth(); err != nil {
		return problem(c, fiber.StatusServiceUnavailable, "store cannot take webhooks: %v", err)
	}
	return c.JSON(fiber.Map{"status": "ready", "config": s.bundle.Load().Path, "stats": st})
}

// Run serves until ctx ends, then shuts down cleanly: it stops accepting,
// answers the requests in flight, lets the pipeline and dispatcher finish,
// commits the pending batch and closes the store.
func (s *Server) Run(ctx context.Context) error {
	b := s.bundle.Load()
	ln, err := net.Listen("tcp", b.File.Listen)
	if err != nil {
		s.db.Close()
		return fmt.Errorf("listen %s: %w", b.File.Listen, err)
	}
	s.addr.Store(ln.Addr().String())
	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); s.pipe.run(workCtx) }()
	go func() { defer wg.Done(); s.gone.run(workCtx, s.restHookGone) }()
	go func() { defer wg.Done(); s.sched.run(workCtx) }()
	go func() {
		defer wg.Done()
		if err := s.disp.Run(workCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("delivery dispatcher stopped", "err", err)
		}
	}()
	// Timers armed under rule files or calendars edited while the gateway
	// was down move to their new due times, in the background (retime.go).
	s.retime.start(workCtx)
	s.startHousekeeping(workCtx, &wg)
	if s.opts.Watch {
		s.watchConfig(workCtx, &wg)
	}
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- s.app.Listener(firstRequestDeadline{Listener: ln, timeout: func() time.Duration { return s.app.Server().ReadTimeout }})
	}()
	s.ready.Store(true)
	// The data directory absolute: a relative data_dir resolves against
	// the service's working directory, a classic surprise.
	dataDir, err := filepath.Abs(b.File.DataDir)
	if err != nil {
		dataDir = b.File.DataDir
	}
	adminAPI := "loopback-only"
	if b.File.AdminToken != "" {
		adminAPI = "token"
	}
	s.log.Info("hookline listening", "addr", ln.Addr().String(), "config", b.Path, "data_dir", dataDir, "admin_api", adminAPI,
		"connectors", b.ConnectorNames(), "rules", len(b.Rules.Rules()))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	s.ready.Store(false)
	s.log.Info("shutting down: no new requests, finishing those in flight")
	if err := s.app.ShutdownWithTimeout(15 * time.Second); err != nil {
		s.log.Error("http shutdown", "err", err)
	}
	stopWork()
	s.retime.stop()
	wg.Wait()
	if err := s.db.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close store: %w", err)
	}
	s.log.Info("stopped")
	return runErr
}

// loadGuarded reads the config as Reload does, with a panic in the loader
// (a bug that an edited file triggers) reported as a config error of
// that file: the reload is refused and the last good config stays.
func (s *Server) loadGuarded(path string) (b *Bundle, errs yamlconf.Errors) {
	defer func() {
		if r := recover(); r != nil {
			pe := bug.Recovered("loading the config", r).Log(s.log)
			b, errs = nil, yamlconf.Errors{&yamlconf.Error{Pos: yamlconf.Pos{File: path}, Msg: pe.Error()}}
		}
	}()
	return s.load(path, s.opts.Env)
}

// Close releases the store when Run was never called.
func (s *Server) Close() error { return s.db.Close() }

// startHousekeeping prunes, every retention.interval, expired dedupe keys,
// fingerprints and rule firings and the history older than the retention
// settings allow (housekeeping.go).
func (s *Server) startHousekeeping(ctx context.Context, wg *sync.WaitGroup) {
	h := s.newHousekeeper()
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.loop(ctx)
	}()
}

// onGone is called by delivery after a 410 from a target: a REST-hook
// subscriber that is gone loses its subscription. It runs on the
// dispatcher's loop: the removal is queued for the gone goroutine.
func (s *Server) onGone(d *store.Delivery) {
	// The host only: a subscriber's URL path is often its credential
	// (Zapier's /hooks/catch/<id>/<secret>/).
	host := "(unparsable URL)"
	if u, err := url.Parse(d.Request.URL); err == nil {
		host = u.Host
	}
	if id, ok := restHookSubscriptionID(d); ok {
		s.log.Warn("delivery target is gone (410); removing its REST-hook subscription", "delivery", d.ID, "subscription", id, "host", host)
		s.gone.add(id)
		return
	}
	s.log.Warn("delivery target is gone (410)", "delivery", d.ID, "rule", d.RuleID, "connector", d.Connector, "host", host)
}

// Reload loads the config again and swaps it in when it is valid; the
// running gateway keeps its last good config otherwise.
func (s *Server) Reload() error {
	_, err := s.reload()
	return err
}

// reload is Reload that also returns the warnings of the reloaded config:
// its own (Bundle.Warnings) and one per restart-only setting that changed.
func (s *Server) reload() ([]string, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.bundle.Load()
	b, errs := s.loadGuarded(old.Path)
	if len(errs) > 0 {
		s.log.Error("config reload refused; keeping the last good config", "errors", errs.Error())
		return nil, fmt.Errorf("reload refused:\n%w", errs)
	}
	pending := s.restartOnly(old, b)
	s.bundle.Store(b)
	s.disp.SetOutbounds(outbounds(b))
	for _, w := range b.Warnings {
		s.log.Warn(w)
	}
	for _, w := range pending {
		s.log.Warn("config reload: " + w)
	}
	s.log.Info("config reloaded", "connectors", b.ConnectorNames(), "rules", len(b.Rules.Rules()))
	s.retime.trigger() // armed timers follow edited time-based rules (retime.go)
	return append(append([]string(nil), b.Warnings...), pending...), nil
}

// restartOnly keeps in b, the reloaded config, the settings of old (the
// config in force) that cannot change while the gateway runs, and returns
// a warning for each that gateway.yaml now sets otherwise. A setting the
// command line overrides is not gateway.yaml's to change.
func (s *Server) restartOnly(old, b *Bundle) []string {
	var warnings []string
	changed := func(key string, started, configured any) {
		if started != configured {
			warnings = append(warnings, fmt.Sprintf("%s changed from %v to %v; it takes effect at the next restart", key, started, configured))
		}
	}
	if s.opts.Listen == "" {
		changed("listen", s.started.Listen, b.File.Listen)
	}
	if s.opts.DataDir == "" {
		changed("data_dir", s.started.DataDir, b.File.DataDir)
	}
	changed("delivery.workers", s.started.Delivery.Workers, b.File.Delivery.Workers)
	changed("delivery.log_dir", orUnset(s.started.Delivery.LogDir), orUnset(b.File.Delivery.LogDir))
	b.File.Listen, b.File.DataDir = old.File.Listen, old.File.DataDir
	b.File.Delivery.Workers, b.File.Delivery.LogDir = old.File.Delivery.Workers, old.File.Delivery.LogDir
	// What delivery may reach: the dispatcher's dialers are built with the
	// allow list at start-up.
	if !slices.Equal(b.EgressAllow, old.EgressAllow) {
		warnings = append(warnings, fmt.Sprintf("egress.allow (with HOOKLINE_EGRESS_ALLOW) changed from %v to %v; it takes effect at the next restart",
			old.EgressAllow, b.EgressAllow))
		b.EgressAllow = old.EgressAllow
	}
	return warnings
}

// orUnset writes a setting that may be empty so that a warning shows it.
func orUnset(v string) string {
	if v == "" {
		return "(unset)"
	}
	return v
}
