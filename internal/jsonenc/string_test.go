package jsonenc

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString: AppendString writes json.Marshal's bytes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>&</script>", "\u2028\u2029", "\x00\x01\b\f\n\r\t\x1f\x7f", "\xff", "é日本\U0001F600", `"\`, "\xed\xa0\x80", "a\"b\\c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("%q: got %s, want %s", s, got[1:], want)
		}
	})
}
