package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// Flags may follow arguments, as admins type them (`hookline test configs/
// -v`); "--" ends the flags.
func TestParseFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		verbose bool
		rest    string
	}{
		{[]string{"configs/", "-v"}, true, "configs/"},
		{[]string{"-v", "configs/", "a_test.yaml"}, true, "configs/ a_test.yaml"},
		{[]string{"configs/", "a_test.yaml", "-v", "b_test.yaml"}, true, "configs/ a_test.yaml b_test.yaml"},
		{[]string{"configs/", "--", "-v"}, false, "configs/ -v"},
		{[]string{"--", "-v"}, false, "-v"},
		{nil, false, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		v := fs.Bool("v", false, "")
		if err := parseFlags(fs, tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if *v != tc.verbose || strings.Join(fs.Args(), " ") != tc.rest {
			t.Errorf("%q: -v %v args %q, want %v %q", tc.args, *v, fs.Args(), tc.verbose, tc.rest)
		}
	}
}

// `hookline test configs/ -h` prints the usage; it used to open a test
// file named -h.
func TestHelpAfterThePath(t *testing.T) {
	for _, cmd := range []func([]string, *bytes.Buffer, *bytes.Buffer) int{
		func(a []string, o, e *bytes.Buffer) int { return runTest(a, o, e) },
		func(a []string, o, e *bytes.Buffer) int { return runValidate(a, o, e) },
	} {
		var out, errb bytes.Buffer
		code := cmd([]string{"../../configs", "-h"}, &out, &errb)
		if code != 0 || !strings.Contains(errb.String(), "Usage: hookline") || strings.Contains(out.String()+errb.String(), "open -h") {
			t.Errorf("exit %d, stdout %q, stderr %q; want the usage and exit 0", code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runServe([]string{"configs"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unexpected argument "configs"`) {
		t.Errorf("serve with an argument: exit %d, stderr %q", code, errb.String())
	}
}
