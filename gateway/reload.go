package gateway

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hookline/hookline/internal/yamlconf"
)

// reloadDebounce is how long the watcher waits after the last change before
// it reloads: editors, deploy scripts and the kubelet write in bursts.
const reloadDebounce = 300 * time.Millisecond

// watchConfig reloads the config when a file in one of its directories
// changes. Editors write files in bursts, so changes are debounced.
//
// The directories watched follow the config: after every reload attempt
// they are computed again from the config in force and from the include
// patterns of gateway.yaml as it stands on disk, so that a directory added
// to gateway.yaml is watched, and a directory that was removed and created
// again (a deploy that replaces rules/ as a whole, a Kubernetes ConfigMap
// update that swaps the ..data symlink) is watched anew. The parent of each
// directory is watched too, so that its re-creation is seen.
func (s *Server) watchConfig(ctx context.Context, wg *sync.WaitGroup) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("config watch unavailable", "err", err)
		return
	}
	cw := &configWatch{w: w, log: s.log, watched: map[string]os.FileInfo{}}
	cw.update(s.bundle.Load(), s.opts.Env)
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
				if cw.relevant(ev) {
					debounce = time.After(reloadDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("config watch", "err", err)
			case <-debounce:
				debounce = nil
				_ = s.Reload() // a refused reload is logged and keeps the last good config
				// A directory watched anew may have changed between the
				// reload's reading and its watch: read it once more.
				if cw.update(s.bundle.Load(), s.opts.Env) {
					debounce = time.After(reloadDebounce)
				}
			}
		}
	}()
}

// configWatch is the set of directories a config watch covers.
type configWatch struct {
	w   *fsnotify.Watcher
	log *slog.Logger
	// watched maps each directory watched to what it was when the watch
	// was added, to tell a directory created again (or a symlink that now
	// leads elsewhere) from the one watched.
	watched map[string]os.FileInfo
	// configDirs hold config files (their parents are watched too).
	configDirs map[string]bool
}

// relevant reports whether ev may change the config: a YAML file or a
// ..-prefixed name (the ..data symlink of a Kubernetes ConfigMap volume) in
// a config directory, or a config directory itself created, removed or
// renamed.
func (cw *configWatch) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		delete(cw.watched, name) // its watch is gone, or the path leads elsewhere now
	}
	if cw.configDirs[name] {
		return ev.Op != fsnotify.Chmod
	}
	if !cw.configDirs[filepath.Dir(name)] {
		return false
	}
	base := filepath.Base(name)
	ext := filepath.Ext(base)
	return ext == ".yaml" || ext == ".yml" || strings.HasPrefix(base, "..")
}

// update watches the directories of b (the config in force) and of the
// include patterns of gateway.yaml as on disk, and their parents, and
// stops watching the others. It reports whether a watch was added or
// renewed.
func (cw *configWatch) update(b *Bundle, env yamlconf.Env) (added bool) {
	cw.configDirs = map[string]bool{}
	for _, d := range configDirs(b, env) {
		cw.configDirs[d] = true
	}
	want := map[string]bool{}
	for d := range cw.configDirs {
		want[d], want[filepath.Dir(d)] = true, true
	}
	for d := range cw.watched {
		if !want[d] {
			_ = cw.w.Remove(d) // gone already when the directory was removed
			delete(cw.watched, d)
		}
	}
	for d := range want {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() {
			// Missing for now: its parent's watch sees it created.
			_ = cw.w.Remove(d)
			delete(cw.watched, d)
			continue
		}
		if prev, ok := cw.watched[d]; ok && os.SameFile(prev, st) {
			continue
		}
		// Removing first makes fsnotify follow a symlink that now leads
		// elsewhere, rather than keep the watch of the old target.
		_ = cw.w.Remove(d)
		if err := cw.w.Add(d); err != nil {
			delete(cw.watched, d)
			cw.log.Warn("cannot watch config directory", "dir", d, "err", err)
			continue
		}
		cw.log.Debug("watching config directory", "dir", d)
		cw.watched[d] = st
		added = true
	}
	return added
}

// configDirs lists the directories holding files of the config: that of
// gateway.yaml, those of the connector and rule files of b, and those its
// include patterns name, as b has them and as gateway.yaml on disk has
// them now (a reload refused because a newly included directory is still
// empty must see the directory's first file).
func configDirs(b *Bundle, env yamlconf.Env) []string {
	dirs := map[string]bool{filepath.Clean(b.Dir): true}
	for _, c := range b.Connectors {
		dirs[filepath.Dir(c.File)] = true
	}
	for _, f := range b.RuleFiles {
		dirs[filepath.Dir(f)] = true
	}
	patterns := append(append([]string(nil), b.File.Connectors...), b.File.Rules...)
	patterns = append(patterns, includePatterns(b.Path, env)...)
	for _, p := range patterns {
		if !filepath.IsAbs(p) {
			p = filepath.Join(b.Dir, p)
		}
		// The directory part of a pattern, up to its first wildcard.
		d := filepath.Dir(p)
		for hasMeta(d) {
			d = filepath.Dir(d)
		}
		dirs[d] = true
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	return out
}

// includePatterns reads the connectors and rules patterns of the gateway
// file at path, as well as a file that may not load can give them.
func includePatterns(path string, env yamlconf.Env) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	root, _ := yamlconf.Parse(path, data, env)
	var out []string
	for _, key := range []string{"connectors", "rules"} {
		n := yamlconf.Lookup(root, key)
		if n == nil {
			continue
		}
		for _, item := range n.Content {
			if item.Value != "" {
				out = append(out, item.Value)
			}
		}
	}
	return out
}

// hasMeta reports whether path holds a filepath.Match wildcard.
func hasMeta(path string) bool {
	return strings.ContainsAny(path, "*?[")
}
