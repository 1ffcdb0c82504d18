package gateway

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// bodyCharset is how a webhook's body is encoded, from its Content-Type's
// charset parameter.
type bodyCharset int

const (
	charsetUTF8        bodyCharset = iota // utf-8, us-ascii, or none declared
	charsetWindows1252                    // windows-1252, and ISO-8859-1 read as it (WHATWG)
)

// declaredCharset reads the charset parameter of a Content-Type: UTF-8
// (also us-ascii, its subset, and no charset at all) or windows-1252 (also
// ISO-8859-1 and latin1, which the WHATWG Encoding Standard, and so every
// browser, reads as windows-1252: the two differ only in 0x80-0x9F, C1
// controls in ISO-8859-1 that no text holds). Any other charset is refused
// 415 with its name.
func declaredCharset(ctype string) (bodyCharset, *Refusal) {
	if strings.IndexByte(ctype, ';') < 0 {
		return charsetUTF8, nil // no parameters (most senders): no second parse
	}
	_, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return charsetUTF8, nil // ContentKind read the media type without parameters
	}
	name := strings.ToLower(strings.TrimSpace(params["charset"]))
	switch name {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return charsetUTF8, nil
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "cp819", "ibm819",
		"windows-1252", "cp1252", "x-cp1252":
		return charsetWindows1252, nil
	}
	return charsetUTF8, &Refusal{Status: fiber.StatusUnsupportedMediaType,
		Reason: fmt.Sprintf("unsupported charset %q: send UTF-8, ISO-8859-1 or windows-1252", name)}
}

// utf8BOM is the byte order mark some senders put before UTF-8 text.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// windows1252High maps the bytes 0x80-0x9F of windows-1252 to Unicode; the
// five bytes windows-1252 leaves undefined map to the C1 control of the same
// number, as in the WHATWG table. Every byte from 0xA0 up is the code point
// of its value, as in ISO-8859-1.
var windows1252High = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8D, 'Ž', 0x8F,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9D, 'ž', 'Ÿ',
}

// windows1252Rune is the character byte b stands for in windows-1252.
func windows1252Rune(b byte) rune {
	if 0x80 <= b && b < 0xA0 {
		return windows1252High[b-0x80]
	}
	return rune(b)
}

// windows1252ToUTF8 converts windows-1252 text to UTF-8.
func windows1252ToUTF8(text []byte) []byte {
	out := make([]byte, 0, len(text)+len(text)/8)
	for _, b := range text {
		if b < utf8.RuneSelf {
			out = append(out, b)
			continue
		}
		out = utf8.AppendRune(out, windows1252Rune(b))
	}
	return out
}

// formWindows1252ToUTF8 converts a windows-1252 form body to the UTF-8 form
// body with the same fields: a percent-encoded byte from 0x80 up becomes
// the percent-encoding of its character's UTF-8 bytes, a raw one those
// bytes. The structure (separators, '+', malformed escapes) is copied as
// is, for DecodeForm to read and judge.
func formWindows1252ToUTF8(body []byte) []byte {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(body)+len(body)/4)
	for i := 0; i < len(body); i++ {
		b := body[i]
		switch {
		case b == '%' && i+2 < len(body) && isHexDigit(body[i+1]) && isHexDigit(body[i+2]):
			v := hexValue(body[i+1])<<4 | hexValue(body[i+2])
			if v < utf8.RuneSelf {
				out = append(out, body[i:i+3]...)
			} else {
				for _, u := range utf8.AppendRune(nil, windows1252Rune(v)) {
					out = append(out, '%', hex[u>>4], hex[u&0xF])
				}
			}
			i += 2
		case b >= utf8.RuneSelf:
			out = utf8.AppendRune(out, windows1252Rune(b))
		default:
			out = append(out, b)
		}
	}
	return out
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexValue(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// bodyText returns a webhook body as UTF-8 text, to be parsed: converted
// from windows-1252 when so declared, else without a leading UTF-8 byte
// order mark. The signature is checked on the body as received, not on this.
func bodyText(body []byte, cs bodyCharset, kind string) []byte {
	switch {
	case cs == charsetWindows1252 && kind == "form":
		return formWindows1252ToUTF8(body)
	case cs == charsetWindows1252:
		return windows1252ToUTF8(body)
	}
	return bytes.TrimPrefix(body, utf8BOM)
}

// invalidUTF8 refuses a JSON body that is not UTF-8: encoding/json would
// take it and store U+FFFD in place of the text.
func invalidUTF8(text []byte) *Refusal {
	if utf8.Valid(text) {
		return nil
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Refusal{Status: fiber.StatusBadRequest, Reason: fmt.Sprintf(
				"malformed JSON body: not valid UTF-8 at byte %d (send UTF-8, or declare charset=ISO-8859-1 or windows-1252 in the Content-Type)", i+1)}
		}
		i += size
	}
	return nil
}
