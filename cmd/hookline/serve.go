package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "hookline serve:", err)
		return 2
	}
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
	srv, err := gateway.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "hookline serve:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "hookline serve:", err)
		return 1
	}
	return 0
}
