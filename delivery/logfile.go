package delivery

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Log action conventions: the gateway stores a log delivery as
// Request{Method: logMethod, URL: logScheme + "<relative path>", Body: line}.
const (
	logMethod = "LOG"
	logScheme = "file:"
	logAction = "log"
	// logFileMode and logDirMode are the permissions of created files and directories.
	logFileMode = 0o640
	logDirMode  = 0o750
)

// logPath returns the relative path of a log delivery's URL ("file:a/b.log"
// -> "a/b.log"), refusing empty, absolute and escaping paths.
func logPath(url string) (string, error) {
	rel, ok := strings.CutPrefix(url, logScheme)
	if !ok {
		return "", fmt.Errorf("log target %q is not a %s URL: %w", url, logScheme, ErrLogPath)
	}
	if rel == "" || strings.ContainsRune(rel, 0) || strings.Contains(rel, `\`) {
		return "", fmt.Errorf("log file %q: %w", rel, ErrLogPath)
	}
	if !filepath.IsLocal(rel) || path.IsAbs(rel) {
		return "", fmt.Errorf("log file %q: %w", rel, ErrLogPath)
	}
	clean := path.Clean(rel)
	if clean == "." || strings.HasSuffix(rel, "/") {
		return "", fmt.Errorf("log file %q names a directory: %w", rel, ErrLogPath)
	}
	return clean, nil
}

// logLine makes one line of text: embedded line breaks are escaped so that
// each firing stays one line, and a single trailing newline is dropped.
func logLine(body []byte) []byte {
	s := strings.TrimSuffix(string(body), "\n")
	s = strings.TrimSuffix(s, "\r")
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`).Replace(s)
	}
	return append([]byte(s), '\n')
}

// appendLog appends line (made one line by logLine) to rel inside dir,
// creating parent directories (0o750) and the file (0o640), and fsyncs it.
// os.Root keeps every step inside dir: ".." and symbolic links that lead out
// are refused with ErrLogPath.
func appendLog(dir, url string, body []byte) error {
	if dir == "" {
		return ErrNoLogDir
	}
	rel, err := logPath(url)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open log directory %s: %w", dir, err)
	}
	defer root.Close()
	if parent := path.Dir(rel); parent != "." {
		if err := root.MkdirAll(parent, logDirMode); err != nil {
			return logFileErr(rel, "create directory for", err)
		}
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_APPEND|os.O_CREATE, logFileMode)
	if err != nil {
		return logFileErr(rel, "open", err)
	}
	if _, err := f.Write(logLine(body)); err != nil {
		_ = f.Close()
		return fmt.Errorf("append to log file %s: %w", rel, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync log file %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close log file %s: %w", rel, err)
	}
	return nil
}

// logFileErr wraps an os.Root error, marking escapes as ErrLogPath.
func logFileErr(rel, op string, err error) error {
	if strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("%s log file %s: %w (%v)", op, rel, ErrLogPath, err)
	}
	return fmt.Errorf("%s log file %s: %w", op, rel, err)
}
