package gateway

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// smallObjectKeys is how many keys of an object duplicateKey compares one
// by one before it switches to a set.
const smallObjectKeys = 32

// duplicateKey finds an object in a valid JSON document that names a key
// twice (spelled alike once unescaped): the key and the JSON pointer of the
// object. RFC 8259 leaves the meaning of such an object undefined, and the
// gateway's readers disagree on it (encoding/json, the schema check, keeps
// the last value; gjson, the mapping's paths, the first), so the intake
// refuses it. Nesting is bounded: json.Valid refuses more than 10,000 levels.
func duplicateKey(body []byte) (key, pointer string, found bool) {
	return duplicateIn(gjson.ParseBytes(body))
}

func duplicateIn(r gjson.Result) (key, pointer string, found bool) {
	switch {
	case r.IsObject():
		var small [smallObjectKeys]string
		keys := small[:0]
		var seen map[string]struct{}
		r.ForEach(func(k, v gjson.Result) bool {
			name := k.Str
			if seen == nil {
				for _, prev := range keys {
					if prev == name {
						key, found = name, true
						return false
					}
				}
				if len(keys) < cap(keys) {
					keys = append(keys, name)
				} else {
					seen = make(map[string]struct{}, 2*len(keys))
					for _, prev := range keys {
						seen[prev] = struct{}{}
					}
				}
			}
			if seen != nil {
				if _, dup := seen[name]; dup {
					key, found = name, true
					return false
				}
				seen[name] = struct{}{}
			}
			if key, pointer, found = duplicateIn(v); found {
				pointer = "/" + pointerToken(name) + pointer
				return false
			}
			return true
		})
	case r.IsArray():
		i := 0
		r.ForEach(func(_, v gjson.Result) bool {
			if key, pointer, found = duplicateIn(v); found {
				pointer = "/" + strconv.Itoa(i) + pointer
				return false
			}
			i++
			return true
		})
	}
	return key, pointer, found
}

// pointerToken escapes an object key as a JSON pointer token (RFC 6901).
func pointerToken(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
