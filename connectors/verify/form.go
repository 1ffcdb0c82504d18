package verify

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"unicode/utf8"
)

// DecodeForm turns an application/x-www-form-urlencoded body into a JSON
// object: each key maps to its string value; a repeated key maps to an array
// of its values in order. Keys keep their exact spelling and the object lists
// them in order of first appearance. Invalid percent-encoding, a semicolon
// separator, or a key or value that is not UTF-8 once decoded is an error. It
// also returns the parsed values.
func DecodeForm(body []byte) ([]byte, url.Values, error) {
	values := url.Values{}
	var order []string
	for rest := string(body); rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, nil, fmt.Errorf("decode form body: invalid semicolon separator")
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, nil, fmt.Errorf("decode form body: key %q: %w", rawKey, err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, nil, fmt.Errorf("decode form body: value of %q: %w", key, err)
		}
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return nil, nil, fmt.Errorf("decode form body: key %q: not UTF-8 after decoding", rawKey)
		}
		if _, seen := values[key]; !seen {
			order = append(order, key)
		}
		values[key] = append(values[key], value)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, key := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(key)
		if err != nil {
			return nil, nil, fmt.Errorf("decode form body: encode key %q: %w", key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		var v []byte
		if vs := values[key]; len(vs) == 1 {
			v, err = json.Marshal(vs[0])
		} else {
			v, err = json.Marshal(vs)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("decode form body: encode value of %q: %w", key, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), values, nil
}

// ContentKind classifies a Content-Type header: "json" (application/json,
// a +json suffix, text/json), "form" (application/x-www-form-urlencoded), or
// "" when unsupported. Parameters such as charset are ignored.
func ContentKind(contentType string) string {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		media, _, _ = strings.Cut(contentType, ";")
		media = strings.ToLower(strings.TrimSpace(media))
	}
	switch {
	case media == "application/json", media == "text/json":
		return "json"
	case strings.HasSuffix(media, "+json") && strings.Contains(media, "/"):
		return "json"
	case media == "application/x-www-form-urlencoded":
		return "form"
	}
	return ""
}
