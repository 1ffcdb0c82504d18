package gateway

import (
	"sync"
	"time"
)

// maxLimitedKeys bounds how many keys a logLimiter remembers: past it,
// the keys whose interval is over are forgotten.
const maxLimitedKeys = 1024

// logLimiter lets one log line per key through per interval and counts the
// lines it holds back, so that a flood (a platform posting with a rotated
// secret, someone guessing the admin token) logs its first line each
// minute with how many were suppressed since the last one.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*limitedKey
}

// limitedKey is one key's interval: when it ends and how many lines were
// held back in it.
type limitedKey struct {
	until      time.Time
	suppressed int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, keys: map[string]*limitedKey{}}
}

// allow reports whether a line for key may be logged at now and, when it
// may, how many lines of key were held back since the last one logged.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k != nil && now.Before(k.until) {
		k.suppressed++
		return false, 0
	}
	if k == nil {
		if len(l.keys) >= maxLimitedKeys {
			l.forgetExpired(now)
		}
		k = &limitedKey{}
		l.keys[key] = k
	}
	suppressed, k.suppressed, k.until = k.suppressed, 0, now.Add(l.every)
	return true, suppressed
}

// forgetExpired drops the keys whose interval is over; their suppressed
// lines, if any, are not reported.
func (l *logLimiter) forgetExpired(now time.Time) {
	for key, k := range l.keys {
		if !now.Before(k.until) {
			delete(l.keys, key)
		}
	}
}
