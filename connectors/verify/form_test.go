package verify

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeForm(t *testing.T) {
	tests := []struct {
		name string
		body string
		json string // exact expected output
	}{
		{"empty", "", `{}`},
		{"one pair", "a=1", `{"a":"1"}`},
		{"order of first appearance", "z=1&a=2&m=3", `{"z":"1","a":"2","m":"3"}`},
		{"repeated key becomes array in order", "MediaUrl=b&Body=hi&MediaUrl=a&MediaUrl=c", `{"MediaUrl":["b","a","c"],"Body":"hi"}`},
		{"key without value", "flag&x=", `{"flag":"","x":""}`},
		{"empty pairs skipped", "&&a=1&&", `{"a":"1"}`},
		{"plus is space, percent decoded", "text=hello+world%21&to=%2B14155551234", `{"text":"hello world!","to":"+14155551234"}`},
		{"keys keep exact spelling", "hub.mode=subscribe&Hub.Mode=x&user%5Bname%5D=a", `{"hub.mode":"subscribe","Hub.Mode":"x","user[name]":"a"}`},
		{"second equals is part of value", "a=b=c", `{"a":"b=c"}`},
		{"utf-8 value", "name=J%C3%BCrgen", `{"name":"Jürgen"}`},
		{"quotes and backslashes", `q=%22a%5Cb%22`, `{"q":"\"a\\b\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, values, err := DecodeForm([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeForm: %v", err)
			}
			if string(got) != tt.json {
				t.Errorf("json = %s, want %s", got, tt.json)
			}
			want, _ := url.ParseQuery(tt.body)
			if !reflect.DeepEqual(values, want) && !(len(values) == 0 && len(want) == 0) {
				t.Errorf("values = %v, want %v", values, want)
			}
		})
	}
}

func TestDecodeFormFixtures(t *testing.T) {
	t.Run("twilio sdk params", func(t *testing.T) {
		got, values, err := DecodeForm(readFixture(t, "twilio-signature-vector-sdk-params.form"))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"CallSid":"CA1234567890ABCDE","Digits":"1234","From":"+14158675309","To":"+18005551212","Caller":"+14158675309"}`
		if string(got) != want {
			t.Errorf("json = %s\nwant  %s", got, want)
		}
		if values.Get("From") != "+14158675309" {
			t.Errorf("values From = %q", values.Get("From"))
		}
	})
	t.Run("slack slash command", func(t *testing.T) {
		var body string
		for _, v := range loadVectors(t) {
			if v.Scheme == "slack-v0" {
				body = string(vectorBody(t, v))
			}
		}
		if body == "" {
			t.Fatal("slack vector missing")
		}
		got, _, err := DecodeForm([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		checks := map[string]any{
			"command":      "/webhook-collect",
			"text":         "",
			"user_name":    "roadrunner",
			"response_url": "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN",
		}
		for k, want := range checks {
			if m[k] != want {
				t.Errorf("%s = %#v, want %#v", k, m[k], want)
			}
		}
		if len(m) != 11 {
			t.Errorf("got %d keys, want 11", len(m))
		}
	})
}

func TestDecodeFormErrors(t *testing.T) {
	tests := []struct{ name, body, msg string }{
		{"bad escape in value", "a=%zz", `value of "a"`},
		{"truncated escape", "a=%4", `value of "a"`},
		{"bad escape in key", "%g1=1", `key "%g1"`},
		{"semicolon separator", "a=1;b=2", "semicolon"},
		{"invalid utf-8 value", "name=%FF%FE", "not UTF-8"},
		{"invalid utf-8 key", "%C3=1", "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, values, err := DecodeForm([]byte(tt.body))
			if err == nil {
				t.Fatalf("accepted %q as %s", tt.body, out)
			}
			if out != nil || values != nil {
				t.Errorf("returned output with an error: %s %v", out, values)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "decode form body: ") {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestContentKind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"application/json", "json"},
		{"application/json; charset=utf-8", "json"},
		{"Application/JSON;charset=UTF-8", "json"},
		{"text/json", "json"},
		{"application/vnd.github+json", "json"},
		{"application/cloudevents+json; charset=utf-8", "json"},
		{"application/x-www-form-urlencoded", "form"},
		{"application/x-www-form-urlencoded; charset=utf-8", "form"},
		{" application/x-www-form-urlencoded ", "form"},
		{"application/json; charset", "json"}, // malformed parameter: media type still read
		{"multipart/form-data; boundary=x", ""},
		{"text/plain", ""},
		{"application/xml", ""},
		{"+json", ""},
		{"application/jsonp", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ContentKind(tt.in); got != tt.want {
			t.Errorf("ContentKind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
