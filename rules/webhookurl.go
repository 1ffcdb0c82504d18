package rules

import (
	"strings"
	"text/template/parse"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
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

// urlSubstitutions lists the substitutions of the URL template src and the
// URL part each renders into, judged by the literal text before it (what a
// substitution renders is unknown: it could even hold a "/" or a "?", which
// is why path and query values should be escaped). It walks the parsed
// template, so comments, {{ define }} bodies and quoted "}}" cannot hide a
// substitution; a {{ template }} call counts as one (it prints what the
// called template renders). Inside if/with/range, text of the first branch
// counts as written. A template that does not parse gives nil: the
// compiler reports it.
func urlSubstitutions(src string) []urlSubstitution {
	t := parse.New("url")
	t.Mode = parse.SkipFuncCheck // unknown functions are the compiler's to report
	trees := map[string]*parse.Tree{}
	if _, err := t.Parse(src, "{{", "}}", trees); err != nil || trees["url"] == nil || trees["url"].Root == nil {
		return nil
	}
	var (
		out []urlSubstitution
		lit string // the literal text so far
	)
	var walk func(list *parse.ListNode)
	walk = func(list *parse.ListNode) {
		if list == nil {
			return
		}
		for _, n := range list.Nodes {
			switch n := n.(type) {
			case *parse.TextNode:
				text := string(n.Text)
				for _, loc := range yamlconf.VarShorthand.FindAllStringIndex(text, -1) {
					lit += text[:loc[0]]
					out = append(out, urlSubstitution{src: text[loc[0]:loc[1]], part: urlPartAfter(lit)})
					text = text[loc[1]:]
				}
				lit += text
			case *parse.ActionNode:
				if len(n.Pipe.Decl) == 0 { // {{ $x := ... }} prints nothing
					out = append(out, urlSubstitution{src: actionText(src, int(n.Position()), n.String()), part: urlPartAfter(lit), escape: lastEscape(n.Pipe)})
				}
			case *parse.TemplateNode:
				out = append(out, urlSubstitution{src: actionText(src, int(n.Position()), n.String()), part: urlPartAfter(lit)})
			case *parse.IfNode:
				walkBranch(&n.BranchNode, walk, &lit)
			case *parse.WithNode:
				walkBranch(&n.BranchNode, walk, &lit)
			case *parse.RangeNode:
				walkBranch(&n.BranchNode, walk, &lit)
			}
		}
	}
	walk(trees["url"].Root)
	return out
}

// actionText is the action at byte offset pos of src as written, from its
// {{ to its }}, for messages; def when it cannot be found.
func actionText(src string, pos int, def string) string {
	if pos < 0 || pos > len(src) {
		return def
	}
	start := strings.LastIndex(src[:pos], "{{")
	end := strings.Index(src[pos:], "}}")
	if start < 0 || end < 0 {
		return def
	}
	return src[start : pos+end+2]
}

// walkBranch walks both lists of an if/with/range; the literal text
// afterwards is what the first list wrote.
func walkBranch(b *parse.BranchNode, walk func(*parse.ListNode), lit *string) {
	before := *lit
	walk(b.List)
	after := *lit
	*lit = before
	walk(b.ElseList)
	*lit = after
}

// lastEscape returns "pathescape" or "queryescape" when the pipeline's
// last command is that function (".X | pathescape", "pathescape .X").
func lastEscape(p *parse.PipeNode) string {
	if p == nil || len(p.Cmds) == 0 {
		return ""
	}
	cmd := p.Cmds[len(p.Cmds)-1]
	if len(cmd.Args) == 0 {
		return ""
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "pathescape" || id.Ident == "queryescape") {
		return id.Ident
	}
	return ""
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
