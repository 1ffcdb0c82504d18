package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// config is what one run does; flags fill it.
type config struct {
	Mode      string        // intake or whole
	Target    string        // host:port of the gateway
	Connector string        // inbound connector posted to
	Conns     int           // connections (closed loop) or most outstanding requests (open loop)
	Duration  time.Duration // measured time
	Warmup    time.Duration // load before measuring
	Rate      float64       // whole mode: offered webhooks/s, 0 = closed loop
	SinkAddr  string        // whole mode: where the sink listens
	Drain     time.Duration // whole mode: how long to wait for the backlog after the load
	Status    string        // the status field of the posted events
	PID       int           // the gateway's pid, for its CPU use (0: not measured)
	Label     string        // free text for the report
	Capacity  int           // most webhooks one run posts (whole mode bookkeeping)
	// sinkReady, when set, is called with the sink's URL before any load;
	// a non-empty target it returns replaces Target (tests start the
	// gateway there).
	sinkReady func(url string) (target string, err error)
}

// report is the outcome of one run.
type report struct {
	Mode       string    `json:"mode"`
	Label      string    `json:"label,omitempty"`
	Conns      int       `json:"conns"`
	Offered    float64   `json:"offered_per_s"` // 0: closed loop
	Seconds    float64   `json:"seconds"`
	Acks       int       `json:"acks"` // acks of the webhooks due (open loop) or sent (closed loop) in the window
	Errors     int       `json:"errors"`
	FirstError string    `json:"first_error,omitempty"`
	AcksPerSec float64   `json:"acks_per_s"` // acks that arrived in the window, per second
	Ack        latencies `json:"ack_latency"`

	Delivered       int       `json:"delivered,omitempty"`
	Duplicates      int       `json:"duplicates,omitempty"`
	DeliveredPerSec float64   `json:"delivered_per_s,omitempty"` // sink receipts per second while the load ran
	Backlog         int       `json:"backlog_at_end,omitempty"`  // acked but not yet delivered when the load stopped
	DrainSeconds    float64   `json:"drain_s,omitempty"`
	Undelivered     int       `json:"undelivered,omitempty"` // still missing after the drain timeout
	EndToEnd        latencies `json:"e2e_latency,omitzero"`  // ack -> sink receipt

	LoadBefore  float64 `json:"loadavg_before"`
	LoadAfter   float64 `json:"loadavg_after"`
	GatewayCPU  float64 `json:"gateway_cores"` // -1: unknown
	LoadGenCPU  float64 `json:"loadgen_cores"`
	GoMaxProcs  int     `json:"gomaxprocs"`
	StartedAtUT string  `json:"started_at"`
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.Mode, "mode", "intake", "intake (acks/s and ack latency) or whole (webhook -> rule -> delivery at a sink)")
	fs.StringVar(&cfg.Target, "target", "127.0.0.1:18080", "the gateway's host:port")
	fs.StringVar(&cfg.Connector, "connector", "generic", "inbound connector to post to")
	fs.IntVar(&cfg.Conns, "conns", 64, "connections (intake, whole -rate 0) or the most outstanding requests (whole -rate R)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "load before measuring")
	fs.Float64Var(&cfg.Rate, "rate", 5000, "whole mode: offered webhooks per second (open loop); 0 = closed loop on -conns")
	fs.StringVar(&cfg.SinkAddr, "sink", "127.0.0.1:18090", "whole mode: the sink's listen address (GENERIC_TARGET_URL must point here)")
	fs.DurationVar(&cfg.Drain, "drain", 60*time.Second, "whole mode: how long to wait for undelivered webhooks after the load")
	fs.StringVar(&cfg.Status, "status", "", `status of the posted events (default: "new" for intake, no rule matches; "open" for whole, the bench rule matches)`)
	fs.IntVar(&cfg.PID, "pid", 0, "the gateway's process id, to report its CPU use")
	fs.StringVar(&cfg.Label, "label", "", "label for the report")
	fs.IntVar(&cfg.Capacity, "capacity", 0, "whole mode: most webhooks a run may post (default: enough for 100,000/s or 1.5x -rate)")
	idle := fs.Duration("idle", 0, "first wait up to this long until the gateway has no pending inbox items or deliveries (its /readyz stats)")
	jsonOut := fs.String("json", "", "append the report as one JSON line to this file")
	table := fs.String("table", "", "print the reports in this JSON-lines file as a Markdown table, and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "load:", err)
		return 1
	}
	if *table != "" {
		if err := printTable(*table, stdout); err != nil {
			return fail(err)
		}
		return 0
	}
	if *idle > 0 {
		if err := waitIdle(cfg.Target, *idle); err != nil {
			return fail(err)
		}
	}
	rep, err := run(cfg, stdout)
	if err != nil {
		return fail(err)
	}
	if *jsonOut != "" {
		if err := appendJSON(*jsonOut, rep); err != nil {
			return fail(err)
		}
	}
	return 0
}

// run validates cfg, runs one scenario and prints its report to out.
func run(cfg config, out io.Writer) (*report, error) {
	if cfg.Conns <= 0 || cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Rate < 0 {
		return nil, errors.New("-conns and -duration must be positive, -warmup and -rate not negative")
	}
	var (
		rep *report
		err error
	)
	switch cfg.Mode {
	case "intake":
		if cfg.Status == "" {
			cfg.Status = "new"
		}
		rep, err = runIntake(cfg)
	case "whole":
		if cfg.Status == "" {
			cfg.Status = "open"
		}
		rep, err = runWhole(cfg)
	default:
		return nil, fmt.Errorf("unknown -mode %q: intake or whole", cfg.Mode)
	}
	if err != nil {
		return nil, err
	}
	printReport(out, rep)
	return rep, nil
}

// newRunID returns a random prefix that keeps this run's ids apart from
// earlier runs on the same data directory.
func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "B" + hex.EncodeToString(b)
}

// Parts of the posted body: a ticket update as Zapier or an in-house tool
// would post it to the generic connector, about 600 bytes.
const (
	bodyHead = `{"type":"ticket.updated","id":"`
	bodyMid  = `","status":"`
	bodyTail = `","priority":"high","subject":"Order 4711 has not arrived yet",` +
		`"text":"Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the parcel is at the depot. Could you check what happened?",` +
		`"tags":["shipping","vip"],"group":"support-tier-1","owner":"agent-17","channel":"email",` +
		`"customer":{"name":"Ana Ruiz","email":"ana.ruiz@example.com","phone":"+34600111222"},` +
		`"actor":{"type":"customer","id":"cust-5521","name":"Ana Ruiz"},` +
		`"order_id":"4711","occurred_at":"2026-03-02T09:15:00Z"}`
)

// appendBody appends the body of webhook seq of run to dst.
func appendBody(dst []byte, run string, seq int, status string) []byte {
	dst = append(dst, bodyHead...)
	dst = append(dst, run...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, bodyMid...)
	dst = append(dst, status...)
	return append(dst, bodyTail...)
}

// acked reports whether status is the gateway's durable acknowledgement.
func acked(status int) bool { return status == 202 || status == 200 }

// errorNote keeps the first error of a run.
type errorNote struct {
	once sync.Once
	msg  string
}

func (e *errorNote) set(format string, args ...any) {
	e.once.Do(func() { e.msg = fmt.Sprintf(format, args...) })
}

// runIntake is the closed-loop intake scenario.
func runIntake(cfg config) (*report, error) {
	rep := &report{Mode: "intake", Label: cfg.Label, Conns: cfg.Conns, StartedAtUT: time.Now().UTC().Format(time.RFC3339), LoadBefore: loadAvg()}
	runID := newRunID()
	path := "/hooks/" + cfg.Connector
	if err := probe(cfg.Target, path); err != nil {
		return nil, err
	}
	start := time.Now()
	from := start.Add(cfg.Warmup)
	end := from.Add(cfg.Duration)
	var seq atomic.Int64
	var note errorNote
	lats := make([][]time.Duration, cfg.Conns)
	acks := make([]int, cfg.Conns)
	errs := make([]int, cfg.Conns)
	var gw, self cpuMeter
	var meterOnce sync.Once
	var wg sync.WaitGroup
	for w := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newConn(cfg.Target, path, "application/json")
			defer c.close()
			body := make([]byte, 0, 1024)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if !t0.Before(from) {
					meterOnce.Do(func() { gw, self = startCPU(cfg.PID), startCPU(0) })
				}
				body = appendBody(body[:0], runID, int(seq.Add(1)), cfg.Status)
				st, err := c.post(body)
				t1 := time.Now()
				measured := !t0.Before(from)
				switch {
				case err != nil:
					note.set("%v", err)
					if measured {
						errs[w]++
					}
					time.Sleep(10 * time.Millisecond)
				case !acked(st):
					note.set("HTTP %d: %s", st, trim(c.body))
					if measured {
						errs[w]++
					}
				case measured:
					acks[w]++
					lats[w] = append(lats[w], t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(from)
	rep.GatewayCPU, rep.LoadGenCPU = coresOf(cfg.PID, gw), self.cores()
	var all []time.Duration
	for w := range cfg.Conns {
		rep.Acks += acks[w]
		rep.Errors += errs[w]
		all = append(all, lats[w]...)
	}
	rep.Seconds = el.Seconds()
	rep.AcksPerSec = float64(rep.Acks) / cfg.Duration.Seconds()
	rep.Ack = summarize(all)
	rep.FirstError = note.msg
	rep.LoadAfter = loadAvg()
	rep.GoMaxProcs = goMaxProcs()
	return rep, nil
}

// coresOf returns m's cores, or -1 when no pid was given.
func coresOf(pid int, m cpuMeter) float64 {
	if pid == 0 {
		return -1
	}
	return m.cores()
}

// waitIdle polls the gateway's /readyz until nothing is pending in its
// inbox or outbox, so that one scenario's backlog does not load the next.
func waitIdle(target string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		var st struct {
			Stats struct {
				InboxPending int            `json:"inbox_pending"`
				Deliveries   map[string]int `json:"deliveries"`
			} `json:"stats"`
		}
		resp, err := client.Get("http://" + target + "/readyz")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		busy := st.Stats.InboxPending + st.Stats.Deliveries["pending"] + st.Stats.Deliveries["in_flight"]
		if err == nil && busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("wait for an idle gateway: %w", err)
			}
			return fmt.Errorf("gateway still busy after %s: %d inbox items and %v deliveries pending", limit, st.Stats.InboxPending, st.Stats.Deliveries)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// probe checks that the gateway answers before the clock starts.
func probe(target, path string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := newConn(target, path, "application/json")
		st, err := c.post([]byte(`{`))
		c.close()
		if err == nil && st == 400 {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("a malformed body got HTTP %d, not 400", st)
			}
			return fmt.Errorf("gateway at %s%s is not answering: %w", target, path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// runWhole is the whole-path scenario: open loop at cfg.Rate, or closed
// loop when it is 0, with every delivery matched at the sink.
func runWhole(cfg config) (*report, error) {
	rep := &report{Mode: "whole", Label: cfg.Label, Conns: cfg.Conns, Offered: cfg.Rate, StartedAtUT: time.Now().UTC().Format(time.RFC3339), LoadBefore: loadAvg()}
	total := cfg.Warmup + cfg.Duration
	capacity := cfg.Capacity
	if capacity <= 0 {
		rate := cfg.Rate * 1.5
		if rate == 0 {
			rate = 100000
		}
		capacity = int(rate*total.Seconds()) + 1000
	}
	runID := newRunID()
	clk := newClock()
	sk, err := newSink(cfg.SinkAddr, runID, clk, capacity)
	if err != nil {
		return nil, err
	}
	defer sk.close()
	if cfg.sinkReady != nil {
		target, err := cfg.sinkReady(sk.URL())
		if err != nil {
			return nil, err
		}
		if target != "" {
			cfg.Target = target
		}
	}
	path := "/hooks/" + cfg.Connector
	if err := probe(cfg.Target, path); err != nil {
		return nil, err
	}

	// Per seq: when it was due (open loop) or sent (closed loop), and when
	// its ack arrived (0: not acked), in clock nanoseconds.
	due := make([]int64, capacity)
	ack := make([]atomic.Int64, capacity)
	var note errorNote
	var posted, errCount atomic.Int64

	t0 := clk.now()
	from := t0 + int64(cfg.Warmup)
	end := from + int64(cfg.Duration)
	var gw, self cpuMeter
	var meterOnce sync.Once
	startMeters := func() { meterOnce.Do(func() { gw, self = startCPU(cfg.PID), startCPU(0) }) }

	send := func(c *conn, body []byte, seq int) []byte {
		body = appendBody(body[:0], runID, seq, cfg.Status)
		st, err := c.post(body)
		now := clk.now()
		switch {
		case err != nil:
			note.set("%v", err)
			errCount.Add(1)
			time.Sleep(10 * time.Millisecond)
		case !acked(st):
			note.set("HTTP %d: %s", st, trim(c.body))
			errCount.Add(1)
		default:
			ack[seq].Store(now + 1)
		}
		return body
	}

	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		jobs := make(chan int, capacity)
		for range cfg.Conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := newConn(cfg.Target, path, "application/json")
				defer c.close()
				body := make([]byte, 0, 1024)
				for seq := range jobs {
					body = send(c, body, seq)
				}
			}()
		}
		// The pacer releases request i at t0 + i/rate, in small bursts.
		interval := float64(time.Second) / cfg.Rate
		n := 0
		for {
			now := clk.now()
			if now >= end || n >= capacity {
				break
			}
			if now >= from {
				startMeters()
			}
			for ; n < capacity; n++ {
				d := t0 + int64(float64(n)*interval)
				if d > now || d >= end {
					break
				}
				due[n] = d
				jobs <- n
			}
			next := t0 + int64(float64(n)*interval)
			time.Sleep(time.Duration(max(next-clk.now(), int64(100*time.Microsecond))))
		}
		posted.Store(int64(n))
		close(jobs)
	} else {
		var seqs atomic.Int64
		seqs.Store(-1)
		for range cfg.Conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := newConn(cfg.Target, path, "application/json")
				defer c.close()
				body := make([]byte, 0, 1024)
				for {
					now := clk.now()
					if now >= end {
						return
					}
					if now >= from {
						startMeters()
					}
					seq := int(seqs.Add(1))
					if seq >= capacity {
						return
					}
					due[seq] = now
					body = send(c, body, seq)
				}
			}()
		}
		wg.Wait()
		posted.Store(min(seqs.Load()+1, int64(capacity)))
	}
	wg.Wait()
	loadEnd := clk.now()
	rep.GatewayCPU, rep.LoadGenCPU = coresOf(cfg.PID, gw), self.cores()
	n := int(posted.Load())

	// Count what was acked and delivered when the load stopped, then wait
	// for the rest.
	ackedTotal := 0
	for i := range n {
		if ack[i].Load() != 0 {
			ackedTotal++
		}
	}
	rep.Backlog = ackedTotal - int(sk.first.Load())
	drainStart := time.Now()
	deadline := drainStart.Add(cfg.Drain)
	for int(sk.first.Load()) < ackedTotal && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rep.Backlog > 0 {
		rep.DrainSeconds = time.Since(drainStart).Seconds()
	}

	var ackLat, e2e []time.Duration
	inWindow, acksInWindow := 0, 0
	for i := range n {
		a := ack[i].Load() - 1
		if a < 0 {
			continue
		}
		if a >= from && a < end {
			acksInWindow++
		}
		r, got := sk.receivedAt(i)
		if got {
			rep.Delivered++
			if r >= from && r < end {
				inWindow++
			}
		}
		if due[i] < from {
			continue
		}
		rep.Acks++
		ackLat = append(ackLat, time.Duration(a-due[i]))
		if got {
			e2e = append(e2e, time.Duration(max(0, r-a)))
		}
	}
	rep.Undelivered = ackedTotal - rep.Delivered
	rep.Duplicates = int(sk.dups.Load())
	rep.Errors = int(errCount.Load())
	rep.FirstError = note.msg
	rep.Seconds = float64(loadEnd-from) / 1e9
	// Acks that arrived while the load ran: an open loop the gateway cannot
	// keep up with posts on after the window, and those acks do not count.
	rep.AcksPerSec = float64(acksInWindow) / cfg.Duration.Seconds()
	rep.DeliveredPerSec = float64(inWindow) / cfg.Duration.Seconds()
	rep.Ack = summarize(ackLat)
	rep.EndToEnd = summarize(e2e)
	rep.LoadAfter = loadAvg()
	rep.GoMaxProcs = goMaxProcs()
	if o := sk.others.Load(); o > 0 {
		note.set("sink got %d bodies without a reference of this run", o)
		rep.FirstError = note.msg
	}
	return rep, nil
}

func printReport(w io.Writer, r *report) {
	loop := "closed loop"
	if r.Mode == "whole" && r.Offered > 0 {
		loop = fmt.Sprintf("open loop at %.0f/s", r.Offered)
	}
	fmt.Fprintf(w, "%s %s, %d conns, %.1fs measured %s\n", r.Mode, loop, r.Conns, r.Seconds, r.Label)
	fmt.Fprintf(w, "  acks        %d (%.0f/s), errors %d\n", r.Acks, r.AcksPerSec, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  ack latency %s\n", r.Ack)
	if r.Mode == "whole" {
		fmt.Fprintf(w, "  delivered   %d (%.0f/s while loaded), backlog at end %d, drained in %.1fs, undelivered %d, duplicates %d\n",
			r.Delivered, r.DeliveredPerSec, r.Backlog, r.DrainSeconds, r.Undelivered, r.Duplicates)
		fmt.Fprintf(w, "  end to end  %s (ack -> sink receipt)\n", r.EndToEnd)
	}
	fmt.Fprintf(w, "  machine     load avg %.2f -> %.2f, gateway %s cores, load generator %.2f cores\n",
		r.LoadBefore, r.LoadAfter, coresText(r.GatewayCPU), r.LoadGenCPU)
}

func coresText(c float64) string {
	if c < 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", c)
}

func appendJSON(path string, r *report) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// printTable prints a JSON-lines file of reports as one Markdown table.
func printTable(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fmt.Fprintln(w, "| scenario | conns | offered/s | acks/s | ack p50 ms | ack p99 ms | delivered/s | backlog at end | e2e p50 ms | e2e p99 ms | errors | gateway cores | load avg |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		offered, deliv, backlog, e50, e99 := "max", "-", "-", "-", "-"
		if r.Offered > 0 {
			offered = fmt.Sprintf("%.0f", r.Offered)
		}
		if r.Mode == "intake" {
			offered = "closed"
		} else {
			deliv = fmt.Sprintf("%.0f", r.DeliveredPerSec)
			backlog = strconv.Itoa(r.Backlog)
			e50, e99 = fmt.Sprintf("%.1f", r.EndToEnd.P50), fmt.Sprintf("%.1f", r.EndToEnd.P99)
		}
		name := r.Mode
		if r.Label != "" {
			name += " " + r.Label
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %d | %s | %.1f -> %.1f |\n",
			name, r.Conns, offered, r.AcksPerSec, r.Ack.P50, r.Ack.P99, deliv, backlog, e50, e99, r.Errors,
			coresText(r.GatewayCPU), r.LoadBefore, r.LoadAfter)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
