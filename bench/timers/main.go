// Command timers is Hookline's scale benchmark for time-based rules (issue
// 5): it builds a population of entities with 100 time-based rules, arming
// their timers through the gateway's own pipeline code (Server.ApplyEvents:
// snapshot, rules, Set.Schedule, store timers, one transaction per batch),
// measures the per-event cost of arming at each population size, then runs
// the gateway with its scheduler and measures the firing lag of 10,000
// timers that come due within one minute, and the process's memory.
// Everything runs in this process on loopback and stops by itself.
//
//	go run ./bench/timers                                   # 10k, 100k, 1M entities
//	go run ./bench/timers -sizes 10000,100000 -lag 2000     # a quicker run
//
// See docs/benchmarks-timers.md for the method and the numbers.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/gateway"
	"github.com/hookline/hookline/internal/yamlconf"
	"github.com/hookline/hookline/store"
)

func main() {
	configs := flag.String("configs", "configs", "the repository's configs directory (for connectors/generic.yaml)")
	sizesF := flag.String("sizes", "10000,100000,1000000", "population sizes to measure at, ascending")
	armN := flag.Int("arm", 20000, "events measured for the arming cost at each size")
	lagN := flag.Int("lag", 10000, "timers that come due within the window for the lag measurement (0: skip it)")
	window := flag.Duration("window", time.Minute, "the window in which the lag timers come due")
	background := flag.Int("background", 200, "events per second applied during the lag measurement")
	batch := flag.Int("batch", 2000, "events per transaction while building the population")
	dataDir := flag.String("data", "", "data directory (default: a new temporary one, removed at the end)")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the arming measurements to this file")
	hot := flag.Int("hot", 10000, "size of the hot working set for the second arming measurement")
	rounds := flag.Int("rounds", 4, "rounds in which the arming events alternate with the same events under the control rule set")
	flag.Parse()
	log.SetFlags(log.Ltime)

	var sizes []int
	for _, s := range strings.Split(*sizesF, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			log.Fatalf("bad -sizes %q", *sizesF)
		}
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)

	work, err := os.MkdirTemp("", "hookline-timers-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	data := *dataDir
	if data == "" {
		data = filepath.Join(work, "data")
	}
	cfg, err := writeConfig(work, *configs)
	if err != nil {
		log.Fatal(err)
	}
	sink := newSink()
	defer sink.Close()

	srv, err := gateway.New(gateway.Options{ConfigPath: cfg, Listen: "127.0.0.1:0", DataDir: data,
		Env: yamlconf.MapEnv(map[string]string{"GENERIC_TARGET_URL": sink.URL})})
	if err != nil {
		log.Fatal(err)
	}
	res := results{Rules: len(srv.Bundle().Rules.Rules())}
	log.Printf("%d rules, %d of them time-based", res.Rules, countTimed(srv))

	built := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range sizes {
		start := time.Now()
		for built < n {
			k := min(*batch, n-built)
			evs := make([]*event.Event, 0, k)
			for i := built; i < built+k; i++ {
				evs = append(evs, populationEvent(i, time.Now()))
			}
			if err := srv.ApplyEvents(evs); err != nil {
				log.Fatal(err)
			}
			built += k
		}
		buildTime := time.Since(start)
		st, err := srv.Store().Stats()
		if err != nil {
			log.Fatal(err)
		}
		// Arming cost: status changes on random existing entities, in
		// transactions of 256 events (the pipeline's batch size).
		if *cpuProfile != "" && n == sizes[len(sizes)-1] {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
		}
		armAll, ctlAll := armAgainstControl(srv, *armN, *rounds, func() int { return rng.IntN(n) }, rng)
		if *cpuProfile != "" && n == sizes[len(sizes)-1] {
			pprof.StopCPUProfile()
		}
		// The same on a working set of the hot most recent entities: what a
		// help desk's traffic looks like (events concern open tickets).
		armHot, ctlHot := armAgainstControl(srv, *armN, *rounds, func() int { return n - 1 - rng.IntN(min(*hot, n)) }, rng)
		st2, _ := srv.Store().Stats()
		m := memory()
		row := sizeResult{Entities: n, BuildSeconds: buildTime.Seconds(), Timers: st2.Timers, ArmEvents: *armN,
			Arm: armAll, ArmHot: armHot, Control: ctlAll, ControlHot: ctlHot,
			Memory: m, DBBytes: fileSize(srv.Store().Path())}
		_ = st
		res.Sizes = append(res.Sizes, row)
		log.Printf("entities=%d built in %s; timers=%d; µs/event with arming / control / arming's share: uniform %s / %s / %s, hot %d %s / %s / %s; RSS %d MiB (anon %d, file %d), heap %d MiB; db %d MiB",
			n, buildTime.Round(time.Millisecond), st2.Timers, armAll, ctlAll, armAll.minus(ctlAll), min(*hot, n), armHot, ctlHot, armHot.minus(ctlHot),
			m.RSSMiB, m.AnonMiB, m.FileMiB, m.HeapMiB, row.DBBytes>>20)
	}

	if *lagN > 0 {
		res.Lag = measureLag(srv, sizes[len(sizes)-1], *lagN, *window, *background, sink)
		log.Printf("lag of %d timers due within %s (background %d events/s): p50 %s p90 %s p99 %s max %s; fired %d, missing %d",
			res.Lag.Timers, *window, *background, ms(res.Lag.P50), ms(res.Lag.P90), ms(res.Lag.P99), ms(res.Lag.Max), res.Lag.Fired, res.Lag.Missing)
	}
	res.Memory = memory()
	log.Printf("process: RSS %d MiB (peak %d MiB; anon %d, file-backed %d), Go heap in use %d MiB, Go runtime total %d MiB",
		res.Memory.RSSMiB, res.Memory.PeakRSSMiB, res.Memory.AnonMiB, res.Memory.FileMiB, res.Memory.HeapMiB, res.Memory.GoSysMiB)
	printTable(res)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type results struct {
	Rules  int          `json:"rules"`
	Sizes  []sizeResult `json:"sizes"`
	Lag    lagResult    `json:"lag"`
	Memory mem          `json:"memory"`
}

type sizeResult struct {
	Entities     int     `json:"entities"`
	BuildSeconds float64 `json:"build_seconds"`
	Timers       int     `json:"timers"`
	ArmEvents    int     `json:"arm_events"`
	// Arm is the cost of an event that arms, on entities picked uniformly;
	// ArmHot on a working set of recent entities.
	Arm    cost `json:"arm"`
	ArmHot cost `json:"arm_hot"`
	// Control and ControlHot are the same events' cost under the control
	// rule set (nothing arms): the difference is what arming adds.
	Control    cost  `json:"control"`
	ControlHot cost  `json:"control_hot"`
	Memory     mem   `json:"memory"`
	DBBytes    int64 `json:"db_bytes"`
}

type lagResult struct {
	Timers  int           `json:"timers"`
	Fired   int           `json:"fired"`
	Missing int           `json:"missing"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
	Early   int           `json:"early"`
}

// The bench config: the generic connector, a support calendar and 100
// time-based rules in four families over 25 groups, plus one rule (the
// 100th) with a 90 second timer for the lag measurement.
func writeConfig(dir, configs string) (string, error) {
	generic, err := os.ReadFile(filepath.Join(configs, "connectors", "generic.yaml"))
	if err != nil {
		return "", fmt.Errorf("read the generic connector (run from the repository root or pass -configs): %w", err)
	}
	for _, d := range []string{"connectors", "rules"} {
		if err := os.MkdirAll(filepath.Join(dir, "cfg", d), 0o755); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"connectors/generic.yaml": string(generic),
		"rules/bench.yaml":        timedRules(),
		"gateway.yaml": `connectors: ["connectors/*.yaml"]
rules: ["rules/*.yaml"]
delivery: { workers: 8 }
calendars:
  support:
    timezone: Europe/Rome
    hours: { mon-fri: "09:00-18:00" }
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, "cfg", name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "cfg"), nil
}

// timedRules is the bench's rule file: 99 time-based rules in four
// families over 25 groups, and the rule "lag" with a 90 second timer.
func timedRules() string {
	var r strings.Builder
	r.WriteString("rules:\n")
	for k := range 99 {
		g := fmt.Sprintf("g%02d", k%25)
		fmt.Fprintf(&r, "  - id: t%02d\n    on: [ticket.*]\n    connector: generic\n", k)
		switch k / 25 {
		case 0:
			fmt.Fprintf(&r, "    when: { all: [ { field: group, is: %s }, { field: status, is: pending } ] }\n    for: %dh\n    pause_when: { field: tags, includes: [snoozed] }\n", g, 24+k%5)
		case 1:
			fmt.Fprintf(&r, "    when: { all: [ { field: group, is: %s }, { field: owner, present: true }, { field: status, is_not: solved } ] }\n    idle: %dh\n", g, 48+k%5)
		case 2:
			fmt.Fprintf(&r, "    when: { all: [ { field: group, is: %s }, { field: last_customer_message_at, after: last_agent_message_at } ] }\n    since: last_customer_message_at\n    for: %dh\n    calendar: support\n", g, 4+k%5)
		default:
			fmt.Fprintf(&r, "    when: { all: [ { field: group, is: %s }, { field: status, is: investigating } ] }\n    for: %dh\n    calendar: support\n", g, 8+k%5)
		}
		r.WriteString("    then: [ { set_priority: high }, { add_tags: [late] } ]\n")
	}
	r.WriteString("  - id: lag\n    on: [ticket.*]\n    connector: generic\n    when: { field: custom.bench, is: soon }\n    for: 90s\n    then: [ { set_priority: urgent } ]\n")
	return r.String()
}

func countTimed(srv *gateway.Server) int {
	n := 0
	for _, r := range srv.Bundle().Rules.Rules() {
		if r.Timer != nil {
			n++
		}
	}
	return n
}

var statuses = []string{"pending", "open", "investigating", "waiting"}

func ref(i int) string { return fmt.Sprintf("T%07d", i) }

// populationEvent creates entity i: a ticket of group g(i%25) with an
// owner, a status by i%4 and, for every third one, a customer's message.
func populationEvent(i int, now time.Time) *event.Event {
	ev := &event.Event{Connector: "generic", Type: "ticket.created", Entity: "ticket", Reference: ref(i), OccurredAt: now,
		Actor: event.Actor{Type: event.ActorSystem},
		Fields: map[string]any{"status": statuses[i%4], "group": fmt.Sprintf("g%02d", i%25), "owner": fmt.Sprintf("agent%02d", i%50),
			"priority": "normal", "subject": "ticket " + strconv.Itoa(i)},
		Vars: map[string]string{"REFERENCE": ref(i)}}
	if i%3 == 0 {
		ev.Type, ev.Actor.Type = "ticket.message_received", event.ActorCustomer
		ev.Fields["text"] = "hello"
	}
	return ev
}

// armAgainstControl measures the arming cost and its control. In each of
// rounds rounds it applies n/rounds status changes that the 100 time-based
// rules listen to (type ticket.status_changed), then as many identical
// changes of a type no rule listens to (controlType) on entities picked the
// same way: the same snapshot reads and writes, event and index records,
// transaction and fsync, without the rules' evaluation and without arming.
// It returns the cost per event of each, in wall time and in the process's
// CPU time. Alternating keeps the two on the same store at the same size,
// with the machine's drift spread over both.
func armAgainstControl(srv *gateway.Server, n, rounds int, pick func() int, rng *rand.Rand) (timed, control cost) {
	rounds = max(1, rounds)
	per := max(1, n/rounds)
	for range rounds {
		pprof.Do(context.Background(), pprof.Labels("events", "arming"), func(context.Context) {
			timed = timed.plus(arm(srv, per, pick, rng, "ticket.status_changed"))
		})
		pprof.Do(context.Background(), pprof.Labels("events", "control"), func(context.Context) {
			control = control.plus(arm(srv, per, pick, rng, controlType))
		})
	}
	return timed.div(float64(rounds)), control.div(float64(rounds))
}

// cost is what events cost, in µs per event: Wall is elapsed time (fsync
// and page faults waited for included); CPU is the process's user and
// system time, every goroutine (encoders beside the transaction, GC)
// included, which the disk's and the machine's jitter move much less.
type cost struct {
	Wall float64 `json:"wall_us"`
	CPU  float64 `json:"cpu_us"`
}

func (c cost) plus(d cost) cost   { return cost{c.Wall + d.Wall, c.CPU + d.CPU} }
func (c cost) minus(d cost) cost  { return cost{c.Wall - d.Wall, c.CPU - d.CPU} }
func (c cost) div(k float64) cost { return cost{c.Wall / k, c.CPU / k} }
func (c cost) String() string     { return fmt.Sprintf("%.1f (CPU %.1f)", c.Wall, c.CPU) }

// cpuTime is the process's user plus system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// controlType is the type of the control events: no rule listens to it
// (every rule of the bench is on ticket.*).
const controlType = "bench.control"

// arm applies n status changes to the entities pick chooses, in
// transactions of 256 events (the pipeline's batch size), and returns the
// wall time per event in microseconds.
func arm(srv *gateway.Server, n int, pick func() int, rng *rand.Rand, typ string) cost {
	start, cpu := time.Now(), cpuTime()
	for done := 0; done < n; {
		k := min(256, n-done)
		evs := make([]*event.Event, 0, k)
		for range k {
			ev := armEvent(pick(), rng, time.Now())
			ev.Type = typ
			evs = append(evs, ev)
		}
		if err := srv.ApplyEvents(evs); err != nil {
			log.Fatal(err)
		}
		done += k
	}
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return cost{Wall: perEvent(time.Since(start)), CPU: perEvent(cpuTime() - cpu)}
}

// armEvent changes the status of entity i: it arms, moves or cancels the
// timers of the rules its group has (and re-arms its idle timer).
func armEvent(i int, rng *rand.Rand, now time.Time) *event.Event {
	return &event.Event{Connector: "generic", Type: "ticket.status_changed", Entity: "ticket", Reference: ref(i), OccurredAt: now,
		Actor:  event.Actor{Type: event.ActorAgent},
		Fields: map[string]any{"status": statuses[rng.IntN(4)]}, Vars: map[string]string{"REFERENCE": ref(i)}}
}

// measureLag runs the gateway (pipeline, scheduler, delivery) and arms lagN
// timers of the rule "lag" whose due times are spread evenly over the
// window, starting 30 seconds from now, while background events keep
// arming other timers; it records when each lag timer's transaction
// committed.
func measureLag(srv *gateway.Server, population, lagN int, window time.Duration, background int, sink *sink) lagResult {
	var mu sync.Mutex
	lags := make(map[string]time.Duration, lagN)
	early := 0
	srv.OnTimerFired(func(t store.Timer, at time.Time) {
		if t.Rule != "lag" {
			return
		}
		mu.Lock()
		lags[t.Key.Reference] = at.Sub(t.Due)
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	for srv.Addr() == "" {
		time.Sleep(10 * time.Millisecond)
	}

	const lead, forDur = 30 * time.Second, 90 * time.Second
	now := time.Now()
	step := window / time.Duration(lagN)
	stride := max(1, population/lagN)
	var evs []*event.Event
	for j := range lagN {
		i := (j * stride) % population
		due := now.Add(lead + time.Duration(j)*step)
		evs = append(evs, &event.Event{Connector: "generic", Type: "ticket.updated", Entity: "ticket", Reference: ref(i),
			OccurredAt: due.Add(-forDur), Actor: event.Actor{Type: event.ActorSystem},
			Fields: map[string]any{"custom.bench": "soon"}, Vars: map[string]string{"REFERENCE": ref(i)}})
		if len(evs) == 500 {
			if err := srv.ApplyEvents(evs); err != nil {
				log.Fatal(err)
			}
			evs = nil
		}
	}
	if len(evs) > 0 {
		if err := srv.ApplyEvents(evs); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("armed %d lag timers in %s; they come due from +%s to +%s", lagN, time.Since(now).Round(time.Millisecond), lead, lead+window)

	var bg atomic.Int64
	stopBG := make(chan struct{})
	var wg sync.WaitGroup
	if background > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(3, 4))
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			per := max(1, background/10)
			for {
				select {
				case <-stopBG:
					return
				case <-tick.C:
				}
				evs := make([]*event.Event, 0, per)
				for range per {
					evs = append(evs, armEvent(rng.IntN(population), rng, time.Now()))
				}
				if err := srv.ApplyEvents(evs); err != nil {
					log.Print(err)
					return
				}
				bg.Add(int64(per))
			}
		}()
	}
	deadline := now.Add(lead + window + 60*time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lags)
		mu.Unlock()
		if n >= lagN {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopBG)
	wg.Wait()
	log.Printf("background: %d events applied during the measurement; the sink received %d deliveries", bg.Load(), sink.count.Load())
	cancel()
	if err := <-done; err != nil {
		log.Print(err)
	}

	var all []time.Duration
	for _, l := range lags {
		if l < 0 {
			early++
		}
		all = append(all, l)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	r := lagResult{Timers: lagN, Fired: len(all), Missing: lagN - len(all), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Early: early}
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	return r
}

// sink answers every delivery 200 on loopback.
type sink struct {
	*httptest.Server
	count atomic.Int64
}

func newSink() *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.count.Add(1)
		w.WriteHeader(200)
	}))
	return s
}

type mem struct {
	RSSMiB     int64 `json:"rss_mib"`
	PeakRSSMiB int64 `json:"peak_rss_mib"`
	AnonMiB    int64 `json:"rss_anon_mib"`
	FileMiB    int64 `json:"rss_file_mib"`
	HeapMiB    int64 `json:"go_heap_inuse_mib"`
	GoSysMiB   int64 `json:"go_sys_mib"`
}

// memory reads the process's resident memory (Linux /proc) and Go's heap.
func memory() mem {
	var m mem
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapMiB, m.GoSysMiB = int64(ms.HeapInuse>>20), int64(ms.Sys>>20)
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSSMiB = kb >> 10
		case "VmHWM:":
			m.PeakRSSMiB = kb >> 10
		case "RssAnon:":
			m.AnonMiB = kb >> 10
		case "RssFile:":
			m.FileMiB = kb >> 10
		}
	}
	return m
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func printTable(r results) {
	fmt.Println()
	fmt.Println("| entities | timers armed | build (s) | µs/event uniform: arming event / control / arming's share | hot set: arming event / control / arming's share | arming's share in CPU µs/event: uniform / hot set | RSS MiB (anon + file) | Go heap MiB | db MiB |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.Sizes {
		share, hotShare := s.Arm.minus(s.Control), s.ArmHot.minus(s.ControlHot)
		fmt.Printf("| %d | %d | %.1f | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.1f / %.1f | %d (%d + %d) | %d | %d |\n", s.Entities, s.Timers, s.BuildSeconds,
			s.Arm.Wall, s.Control.Wall, share.Wall, s.ArmHot.Wall, s.ControlHot.Wall, hotShare.Wall, share.CPU, hotShare.CPU,
			s.Memory.RSSMiB, s.Memory.AnonMiB, s.Memory.FileMiB, s.Memory.HeapMiB, s.DBBytes>>20)
	}
	fmt.Println()
	if r.Lag.Timers == 0 {
		fmt.Printf("lag not measured (-lag 0); peak RSS %d MiB\n", r.Memory.PeakRSSMiB)
		return
	}
	fmt.Printf("| lag timers | fired | p50 | p90 | p99 | max | peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|\n| %d | %d | %s | %s | %s | %s | %d |\n",
		r.Lag.Timers, r.Lag.Fired, ms(r.Lag.P50), ms(r.Lag.P90), ms(r.Lag.P99), ms(r.Lag.Max), r.Memory.PeakRSSMiB)
}
