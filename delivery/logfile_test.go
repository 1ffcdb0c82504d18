package delivery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogPath(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" = refused
	}{
		{"file:app.log", "app.log"},
		{"file:rules/solved.log", "rules/solved.log"},
		{"file:./a/./b.log", "a/b.log"},
		{"file:a/../b.log", "b.log"},
		{"file:../escape.log", ""},
		{"file:a/../../escape.log", ""},
		{"file:/etc/passwd", ""},
		{"file://etc/passwd", ""},
		{"file:", ""},
		{"file:.", ""},
		{"file:dir/", ""},
		{"file:a\x00b", ""},
		{`file:a\..\b`, ""},
		{"app.log", ""},
		{"http://x/app.log", ""},
	}
	for _, tt := range tests {
		got, err := logPath(tt.url)
		if tt.want == "" {
			if !errors.Is(err, ErrLogPath) {
				t.Errorf("logPath(%q) = %q, %v; want ErrLogPath", tt.url, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("logPath(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}

func FuzzLogPath(f *testing.F) {
	for _, s := range []string{"file:a.log", "file:../x", "file:/abs", "file:a/b/../c", "file:", "file:..", "file:a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, url string) {
		rel, err := logPath(url)
		if err != nil {
			return
		}
		if !filepath.IsLocal(rel) || strings.HasPrefix(rel, "/") || strings.Contains("/"+rel+"/", "/../") {
			t.Fatalf("logPath(%q) = %q: not a local path", url, rel)
		}
	})
}

func TestLogLine(t *testing.T) {
	tests := map[string]string{
		"hello":        "hello\n",
		"hello\n":      "hello\n",
		"hello\r\n":    "hello\n",
		"a\nb":         `a\nb` + "\n",
		"a\r\nb\rc\n":  `a\nb\rc` + "\n",
		"":             "\n",
		"tab\tand ünï": "tab\tand ünï\n",
	}
	for in, want := range tests {
		if got := string(logLine([]byte(in))); got != want {
			t.Errorf("logLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendLog(t *testing.T) {
	dir := t.TempDir()
	for _, line := range []string{"first", "second\n", "third"} {
		if err := appendLog(dir, "file:rules/x/out.log", []byte(line)); err != nil {
			t.Fatalf("append %q: %v", line, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "rules", "x", "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "first\nsecond\nthird\n" {
		t.Fatalf("file holds %q", b)
	}
	fi, err := os.Stat(filepath.Join(dir, "rules", "x", "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("file mode %v, want at most 0640", perm)
	}

	// A symbolic link inside the directory that points outside is refused.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := appendLog(dir, "file:out/stolen.log", []byte("x")); !errors.Is(err, ErrLogPath) {
		t.Errorf("symlink escape: got %v, want ErrLogPath", err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd.log")); err != nil {
		t.Fatal(err)
	}
	if err := appendLog(dir, "file:passwd.log", []byte("x")); !errors.Is(err, ErrLogPath) {
		t.Errorf("absolute symlink: got %v, want ErrLogPath", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "stolen.log")); !os.IsNotExist(err) {
		t.Errorf("a file was written outside the log directory: %v", err)
	}
	for _, url := range []string{"file:../escape.log", "file:/tmp/escape.log"} {
		if err := appendLog(dir, url, []byte("x")); !errors.Is(err, ErrLogPath) {
			t.Errorf("%s: got %v, want ErrLogPath", url, err)
		}
	}
	if err := appendLog("", "file:a.log", []byte("x")); !errors.Is(err, ErrNoLogDir) {
		t.Errorf("no dir: got %v, want ErrNoLogDir", err)
	}
}
