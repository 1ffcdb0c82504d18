package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hookline/hookline/gateway"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "configs/gateway.yaml", "gateway config file (or the directory holding gateway.yaml)")
	listen := fs.String("listen", ":8080", "address to listen on (overrides gateway.yaml)")
	data := fs.String("data", "./data", "data directory; the store is hookline.db inside (overrides gateway.yaml)")
	watch := fs.Bool("watch", true, "reload the config when its files change (an invalid edit is refused and logged)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hookline serve: unexpected argument %q (serve takes only flags; the config is --config)\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "hookline serve:", err)
		return 2
	}
	tuneGC(log)
	opts := gateway.Options{ConfigPath: *config, Logger: log, Watch: *watch}
	// Flags override gateway.yaml only when given, or when the file leaves them out.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["listen"] {
		opts.Listen = *listen
	}
	if set["data"] {
		opts.DataDir = *data
	}
	// SIGHUP reloads the config (kill -HUP, systemd's ExecReload) rather
	// than end the gateway, from now on: one that comes while the config
	// loads is answered once the gateway has started.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := gateway.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "hookline serve:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reloadOnHangup(ctx, srv, hup, log)
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "hookline serve:", err)
		return 1
	}
	return 0
}

// reloadOnHangup reloads the config at each signal on hup until ctx ends.
// Reload logs its outcome: the config reloaded, or refused with its errors
// (the last good config stays).
func reloadOnHangup(ctx context.Context, srv *gateway.Server, hup <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the config")
			_ = srv.Reload()
		}
	}
}

// Garbage-collector defaults for the gateway. The live heap is small (tens
// of MiB: events, snapshots, timers and the outbox live in bbolt) while the
// allocation rate is high (every webhook is decoded, mapped, encoded), so
// Go's default GOGC=100 spends 10-20% of the CPU collecting a heap that
// would fit many times over. GOGC=400 trades a few tens of MiB for that
// CPU; the soft memory limit makes the collector work harder again long
// before memory could run away. GOGC and GOMEMLIMIT in the environment win.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 768 << 20
)

func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	gogc := debug.SetGCPercent(100) // read the setting back...
	debug.SetGCPercent(gogc)        // ...and restore it
	log.Debug("garbage collector", "gogc", gogc, "memory_limit_bytes", debug.SetMemoryLimit(-1))
}
