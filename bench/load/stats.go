package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// latencies summarises a set of durations.
type latencies struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize sorts ds in place and returns its percentiles in milliseconds.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return latencies{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (l latencies) String() string {
	return fmt.Sprintf("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (n=%d)", l.P50, l.P90, l.P99, l.Max, l.N)
}

// loadAvg returns the 1-minute load average, or -1 when it cannot be read.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// processCPU returns the user+system CPU time of process pid (0: this
// process).
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, fmt.Errorf("getrusage: %w", err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; fields after its ')' are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("read cpu of pid %d: bad stat line", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu of pid %d: short stat line", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read cpu of pid %d: bad times", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// cpuMeter measures the cores a process used over an interval.
type cpuMeter struct {
	pid   int
	t0    time.Time
	cpu0  time.Duration
	valid bool
}

func startCPU(pid int) cpuMeter {
	c, err := processCPU(pid)
	return cpuMeter{pid: pid, t0: time.Now(), cpu0: c, valid: err == nil}
}

// cores returns the average number of cores used since start (-1 unknown).
func (m cpuMeter) cores() float64 {
	if !m.valid {
		return -1
	}
	c, err := processCPU(m.pid)
	el := time.Since(m.t0)
	if err != nil || el <= 0 {
		return -1
	}
	return float64(c-m.cpu0) / float64(el)
}

func goMaxProcs() int { return runtime.GOMAXPROCS(0) }
