package gateway

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchConfig reloads the config when a file in one of its directories
// changes. Editors write files in bursts, so changes are debounced.
func (s *Server) watchConfig(ctx context.Context, wg *sync.WaitGroup) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("config watch unavailable", "err", err)
		return
	}
	dirs := map[string]bool{}
	b := s.bundle.Load()
	dirs[b.Dir] = true
	for _, c := range b.Connectors {
		dirs[filepath.Dir(c.File)] = true
	}
	for _, f := range b.RuleFiles {
		dirs[filepath.Dir(f)] = true
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			s.log.Warn("cannot watch config directory", "dir", d, "err", err)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Close()
		var debounce <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ext := filepath.Ext(ev.Name); ext == ".yaml" || ext == ".yml" {
					debounce = time.After(300 * time.Millisecond)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("config watch", "err", err)
			case <-debounce:
				debounce = nil
				_ = s.Reload() // a refused reload is logged and keeps the last good config
			}
		}
	}()
}
