package rules

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// urlPart is the part of a URL a template substitution renders into.
type urlPart uint8

const (
	partHost     urlPart = iota // scheme, user info, host or port
	partPath                    // after the host, before ? and #
	partQuery                   // after ?, before #
	partFragment                // after # (never sent)
)

// urlSubstitution is one substitution of a call_webhook URL template: a
// {{ }} action that prints, or a %%NAME%% variable.
type urlSubstitution struct {
	src    string  // as written
	part   urlPart // where its output lands
	escape string  // "pathescape" or "queryescape" when its output goes through one last, else ""
}

var (
	urlVarShorthand = regexp.MustCompile(`^%%[A-Za-z_][A-Za-z0-9_]*%%`)
	// quietAction matches the actions that print nothing: control
	// structure, comments and variable declarations.
	quietAction = regexp.MustCompile(`^(?:if|else|end|range|with|define|template|block|break|continue)\b|^/\*|^\$[A-Za-z0-9_]*\s*:?=`)
	// lastEscape matches an action whose last command is pathescape or
	// queryescape: ".X | pathescape" or "pathescape .X".
	lastEscape = regexp.MustCompile(`(?:\|\s*|^)(pathescape|queryescape)(?:\s[^|]*)?$`)
)

// urlSubstitutions lists the substitutions of the URL template src and the
// URL part each renders into, judged by the literal text before it (what a
// substitution renders is unknown: it could even hold a "/" or a "?", which
// is why path and query values should be escaped).
func urlSubstitutions(src string) []urlSubstitution {
	var out []urlSubstitution
	var lit strings.Builder
	for rest := src; rest != ""; {
		open := strings.Index(rest, "{{")
		pct := strings.Index(rest, "%%")
		if pct >= 0 && (open < 0 || pct < open) && urlVarShorthand.MatchString(rest[pct:]) {
			lit.WriteString(rest[:pct])
			m := urlVarShorthand.FindString(rest[pct:])
			out = append(out, urlSubstitution{src: m, part: urlPartAfter(lit.String())})
			rest = rest[pct+len(m):]
			continue
		}
		if open < 0 {
			lit.WriteString(rest)
			break
		}
		lit.WriteString(rest[:open])
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			break // not a template that parses: the compiler reports it
		}
		action := rest[open : open+end+2]
		rest = rest[open+end+2:]
		body := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(action[2:len(action)-2], "-"), "-"))
		if quietAction.MatchString(body) {
			continue
		}
		s := urlSubstitution{src: action, part: urlPartAfter(lit.String())}
		if m := lastEscape.FindStringSubmatch(body); m != nil {
			s.escape = m[1]
		}
		out = append(out, s)
	}
	return out
}

// urlPartAfter returns the part of a URL that follows the literal text
// prefix.
func urlPartAfter(prefix string) urlPart {
	_, rest, ok := strings.Cut(prefix, "://")
	if !ok || !(strings.HasPrefix(prefix, "http://") || strings.HasPrefix(prefix, "https://")) {
		return partHost
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		return partHost
	}
	rest = rest[end:]
	switch {
	case strings.Contains(rest, "#"):
		return partFragment
	case strings.Contains(rest, "?"):
		return partQuery
	}
	return partPath
}

// checkWebhookURL refuses a call_webhook URL template that substitutes
// into the scheme or host (an event's value could send the request, and
// whatever it carries, anywhere), and warns about a substitution into the
// path or query that is not escaped (a reference like "../admin?x=1" would
// change which resource the request is for).
func (c *compiler) checkWebhookURL(rc *ruleCtx, n *yaml.Node, src string) bool {
	ok := true
	for _, s := range urlSubstitutions(src) {
		switch s.part {
		case partHost:
			c.errorf(rc.file, n, "call_webhook.url: %s renders into the URL's scheme or host: a value of an event could send the request anywhere; write the scheme and host out (use ${VAR} for a host set by the environment) and substitute only into the path or query", s.src)
			ok = false
		case partPath:
			if s.escape != "pathescape" {
				c.warns.Add(rc.file, n, "call_webhook.url: %s renders into the path unescaped: a value holding / ? # or .. changes the request's path; write {{ ... | pathescape }}", s.src)
			}
		case partQuery:
			if s.escape != "queryescape" {
				c.warns.Add(rc.file, n, "call_webhook.url: %s renders into the query unescaped: a value holding & = or # adds or changes parameters; write {{ ... | queryescape }}", s.src)
			}
		}
	}
	return ok
}
