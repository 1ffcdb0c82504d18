package connectors

import (
	"mime"
	"net/http"

	"gopkg.in/yaml.v3"

	"github.com/hookline/hookline/internal/yamlconf"
)

// Reply is the answer a connector's platform expects to a webhook the
// gateway took (inbound.reply), sent as configured, never rendered: the
// gateway answers it to an accepted webhook and to a duplicate alike,
// instead of its JSON with the inbox id. Twilio's "A message comes in"
// webhook, for one, wants TwiML back.
type Reply struct {
	Status      int    // 200 to 299
	ContentType string // a media type, as configured
	Body        []byte // sent as it is; empty for 204
}

type replyYAML struct {
	Status      *int    `yaml:"status"`
	ContentType *string `yaml:"content_type"`
	Body        string  `yaml:"body"`
}

// loadReply compiles an inbound.reply block: a 2xx status, a media type
// and a constant body.
func loadReply(file string, n *yaml.Node) (*Reply, yamlconf.Errors) {
	var errs yamlconf.Errors
	var y replyYAML
	errs.Append(yamlconf.Decode(file, n, &y))
	if len(errs) > 0 || n.Kind != yaml.MappingNode {
		return nil, errs
	}
	r := &Reply{Body: []byte(y.Body)}
	switch {
	case y.Status == nil:
		errs.Add(file, n, "reply: missing required key %q (200 to 299)", "status")
	case *y.Status < 200 || *y.Status > 299:
		errs.Add(file, yamlconf.Lookup(n, "status"), "reply: status %d is not a success; a webhook taken is answered 2xx (200 to 299)", *y.Status)
	case *y.Status == http.StatusNoContent && y.Body != "":
		errs.Add(file, yamlconf.Lookup(n, "body"), "reply: status 204 (No Content) sends no body; drop body or answer 200")
	default:
		r.Status = *y.Status
	}
	if y.ContentType == nil {
		errs.Add(file, n, "reply: missing required key %q (the media type of body, e.g. text/xml)", "content_type")
	} else if _, _, err := mime.ParseMediaType(*y.ContentType); err != nil {
		errs.Add(file, yamlconf.Lookup(n, "content_type"), "reply: content_type %q is not a media type like text/xml: %v", *y.ContentType, err)
	} else {
		r.ContentType = *y.ContentType
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}
