package gateway

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/hookline/hookline/schemas"
)

// smallObjectKeys is how many keys of an object duplicateKey compares one
// by one before it switches to a set.
const smallObjectKeys = 32

// duplicateKey finds an object in a valid JSON document that names a key
// twice (spelled alike once unescaped): the key and the JSON pointer of the
// object. RFC 8259 leaves the meaning of such an object undefined, and the
// gateway's readers disagree on it (encoding/json, the schema check, keeps
// the last value; gjson, the mapping's paths, the first), so the intake
// refuses it.
//
// It reads the document once, front to back, keeping one frame per open
// object or array (json.Valid refuses more than 10,000 levels): its cost
// is linear in the size, whatever the nesting. body must be valid JSON
// (json.Valid); on anything else the answer is meaningless.
func duplicateKey(body []byte) (key, pointer string, found bool) {
	// The open objects and arrays, innermost last, and the keys of every
	// open object, each object's after its parent's. The arrays give a
	// typical webhook's nesting and keys room without allocating.
	var frameRoom [16]keyFrame
	var keyRoom [64][]byte
	frames, keys := frameRoom[:0], keyRoom[:0]
	wantKey := false // the next string is an object's key
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			frames = append(frames, keyFrame{object: true, keysFrom: len(keys)})
			wantKey = true
		case '[':
			frames = append(frames, keyFrame{})
		case '}', ']':
			top := len(frames) - 1
			if frames[top].object {
				keys = keys[:frames[top].keysFrom]
			}
			frames = frames[:top]
			wantKey = false
		case ',':
			top := &frames[len(frames)-1]
			if top.object {
				wantKey = true
			} else {
				top.index++
			}
		case '"':
			end := stringEnd(body, i+1)
			if wantKey {
				name := body[i+1 : end]
				if bytes.IndexByte(name, '\\') >= 0 {
					name = []byte(gjson.ParseBytes(body[i : end+1]).Str)
				}
				var dup bool
				if keys, dup = addKey(&frames[len(frames)-1], keys, name); dup {
					return string(name), framesPointer(frames[:len(frames)-1]), true
				}
				wantKey = false
			}
			i = end
		}
	}
	return "", "", false
}

// keyFrame is one open object or array of duplicateKey's scan.
type keyFrame struct {
	object bool
	// index is the position of the current element of an array.
	index int
	// key is the current member's key of an object (unescaped), and
	// keysFrom where the object's keys start in the scan's keys.
	key      []byte
	keysFrom int
	// set holds the object's keys once it has more than smallObjectKeys.
	set map[string]struct{}
}

// stringEnd returns the index of the quote that closes the JSON string
// whose text starts at from: the first quote not escaped by an odd run of
// backslashes before it.
func stringEnd(body []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return len(body)
		}
		i += j
		backslashes := 0
		for k := i - 1; k >= from && body[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i
		}
		i++
	}
}

// addKey records name as the current key of object, whose keys (while
// it has at most smallObjectKeys) are keys[object.keysFrom:], the last of
// keys; it returns keys and whether the object had the name already.
func addKey(object *keyFrame, keys [][]byte, name []byte) ([][]byte, bool) {
	object.key = name
	if object.set != nil {
		if _, dup := object.set[string(name)]; dup {
			return keys, true
		}
		object.set[string(name)] = struct{}{}
		return keys, false
	}
	own := keys[object.keysFrom:]
	for _, prev := range own {
		if bytes.Equal(prev, name) {
			return keys, true
		}
	}
	if len(own) < smallObjectKeys {
		return append(keys, name), false
	}
	object.set = make(map[string]struct{}, 4*smallObjectKeys)
	for _, prev := range own {
		object.set[string(prev)] = struct{}{}
	}
	object.set[string(name)] = struct{}{}
	return keys[:object.keysFrom], false
}

// framesPointer is the JSON pointer of the value that frames lead to,
// each the current member or element of the one before.
func framesPointer(frames []keyFrame) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteByte('/')
		if f.object {
			b.WriteString(schemas.EscapePointer(string(f.key)))
		} else {
			b.WriteString(strconv.Itoa(f.index))
		}
	}
	return b.String()
}
