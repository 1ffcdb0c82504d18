package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hookline/hookline/gateway"
)

func runTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "list every case, not only failures")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hookline test [-v] [path] [test files...]\n\nRuns the *_test.yaml files beside the connector and rule files of the config\nat path (default configs/), or only the test files named after it.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	path := "configs"
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	var files []string
	if fs.NArg() > 1 {
		files = fs.Args()[1:]
	}
	b, errs := gateway.Load(path, os.LookupEnv)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stdout, e.Error())
		}
		fmt.Fprintf(stderr, "config is invalid: %d problem(s)\n", len(errs))
		return 1
	}
	outcomes, terrs := gateway.RunConfigTests(b, files, os.LookupEnv)
	for _, e := range terrs {
		fmt.Fprintln(stdout, e.Error())
	}
	passed, failed := 0, 0
	for _, o := range outcomes {
		if o.Passed() {
			passed++
			switch {
			case *verbose:
				fmt.Fprintf(stdout, "PASS %s: %s\n", o.Pos, o.Case)
			case len(o.Warnings) > 0:
				// A warning is shown without -v: it says the case passed
				// with something the admin should look at.
				fmt.Fprintf(stdout, "PASS %s: %s (with warnings)\n", o.Pos, o.Case)
			}
		} else {
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %s\n", o.Pos, o.Case)
			for _, f := range o.Failures {
				fmt.Fprintf(stdout, "  %s\n", strings.ReplaceAll(f, "\n", "\n  "))
			}
		}
		for _, w := range o.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", w)
		}
	}
	if len(terrs) > 0 {
		failed += len(terrs)
	}
	fmt.Fprintf(stdout, "config tests: %d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		if passed == 0 && failed == 0 {
			fmt.Fprintln(stderr, "no config test found")
		}
		return 1
	}
	return 0
}
