package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hookline/hookline/gateway"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hookline validate [path]\n\nChecks gateway.yaml (path, or path/gateway.yaml; default configs/) and every\nconnector, rule and *_test.yaml file it includes. Prints each problem as file:line:column: message.")
	}
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	path := "configs"
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "hookline validate: one config path, got %d: %s\n", fs.NArg(), strings.Join(fs.Args(), " "))
		return 2
	}
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	b, errs := gateway.Load(path, os.LookupEnv)
	if len(errs) == 0 {
		// The config tests too: a test file that does not decode, or a
		// case that names no rule or asserts nothing, is found before
		// hookline test runs.
		errs = gateway.CheckConfigTests(b, nil, os.LookupEnv)
	}
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stdout, e.Error())
		}
		fmt.Fprintf(stderr, "%d problem(s) found\n", len(errs))
		return 1
	}
	for _, w := range b.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d connectors, %d rules, %d test files)\n", b.Path, len(b.Connectors), len(b.Rules.Rules()), len(b.TestFiles))
	return 0
}
