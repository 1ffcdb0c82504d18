package verify

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeForm: never panics; on success the output is a JSON object that
// agrees with the returned values, which agree with url.ParseQuery.
func FuzzDecodeForm(f *testing.F) {
	for _, s := range []string{
		"", "a=1", "a=1&a=2&b=", "text=hello+world%21", "%zz=1", "a=1;b=2", "name=%FF",
		"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
		"&&=&=x&y", "q=%3Cscript%3E&q=%26",
	} {
		f.Add([]byte(s))
	}
	f.Add(readFixture(f, "twilio-signature-vector-sdk-params.form"))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, values, err := DecodeForm(body)
		ref, refErr := url.ParseQuery(string(body))
		if err != nil {
			if out != nil || values != nil {
				t.Fatal("output returned with an error")
			}
			return
		}
		if refErr != nil {
			t.Fatalf("DecodeForm accepted %q that url.ParseQuery refuses: %v", body, refErr)
		}
		if len(values) != len(ref) {
			t.Fatalf("values %v, url.ParseQuery %v", values, ref)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("output %q is not a JSON object: %v", out, err)
		}
		if len(m) != len(values) {
			t.Fatalf("JSON has %d keys, values %d", len(m), len(values))
		}
		for k, vs := range values {
			if r := ref[k]; strings.Join(r, "\x00") != strings.Join(vs, "\x00") {
				t.Fatalf("key %q: %q, url.ParseQuery %q", k, vs, r)
			}
			switch got := m[k].(type) {
			case string:
				if len(vs) != 1 || got != vs[0] {
					t.Fatalf("key %q: JSON %q, values %q", k, got, vs)
				}
			case []any:
				if len(vs) < 2 || len(got) != len(vs) {
					t.Fatalf("key %q: JSON %v, values %q", k, got, vs)
				}
				for i := range vs {
					if got[i] != vs[i] {
						t.Fatalf("key %q[%d]: JSON %v, values %q", k, i, got[i], vs[i])
					}
				}
			default:
				t.Fatalf("key %q: JSON type %T", k, got)
			}
		}
	})
}

// FuzzTwilioSign: a request signed per Twilio's documentation verifies, and
// changing any value, key or the URL makes it fail. Never panics.
func FuzzTwilioSign(f *testing.F) {
	f.Add("myapp.php", "foo=1&bar=2", "CallSid", "CA1234567890ABCDE", "Digits", "1234")
	f.Add("", "", "Reason", "Participant", "ReasonConferenceEnded", "test")
	f.Add("a b/ç", "x=%20", "MediaUrl", "b", "MediaUrl", "a")
	f.Add("p", "q=1", "", "", "=", "&")
	const token = "12345"
	v := mustNew(f, Config{Scheme: SchemeTwilio, Secret: token})
	f.Fuzz(func(t *testing.T, path, rawQuery, k1, v1, k2, v2 string) {
		u := "https://mycompany.com/" + url.PathEscape(path)
		if q, err := url.ParseQuery(rawQuery); err == nil && rawQuery != "" {
			u += "?" + q.Encode()
		}
		form := url.Values{}
		form.Add(k1, v1)
		form.Add(k2, v2)
		body := form.Encode()
		sig := macB64(sha1.New, token, twilioContent(u, form))
		mk := func(u, body string) *Request {
			r := &Request{Method: http.MethodPost, URL: u, Header: http.Header{}, Body: []byte(body)}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("X-Twilio-Signature", sig)
			return r
		}
		if strings.Contains(u, "bodySHA256") {
			return // a different signing mode, covered elsewhere
		}
		if err := v.Verify(mk(u, body)); err != nil {
			t.Fatalf("signed request refused: %v (url %q body %q)", err, u, body)
		}
		tampered := url.Values{}
		tampered.Add(k1, v1+"x")
		tampered.Add(k2, v2)
		assertRefused(t, v.Verify(mk(u, tampered.Encode())), "signature does not match", sig)
		assertRefused(t, v.Verify(mk(u+"x", body)), "", sig)
	})
}

// FuzzSlackTimestamp: whatever the timestamp header holds, a correctly
// signed request verifies exactly when the header is a decimal unix time
// within five minutes of now. Never panics.
func FuzzSlackTimestamp(f *testing.F) {
	for _, s := range []string{"1531420618", "1531420318", "1531420917", "1531420919", "", "-1", "+1531420618",
		"1531420618.5", "01531420618", " 1531420618", "9223372036854775807", "99999999999999999999", "0x5b47"} {
		f.Add(s)
	}
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	now := time.Unix(1531420618, 0)
	v := mustNew(f, Config{Scheme: SchemeSlack, Secret: secret})
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J")
	f.Fuzz(func(t *testing.T, ts string) {
		r := newRequest(body, "application/x-www-form-urlencoded", now)
		r.Header.Set("X-Slack-Request-Timestamp", ts)
		sig := "v0=" + macHex(sha256.New, secret, "v0:"+strings.TrimSpace(ts)+":"+string(body))
		r.Header.Set("X-Slack-Signature", sig)
		err := v.Verify(r)
		ts = strings.TrimSpace(ts)
		n, perr := strconv.ParseUint(ts, 10, 63)
		within := perr == nil && len(ts) <= 18 && int64(n) >= now.Unix()-300 && int64(n) <= now.Unix()+300
		if within && err != nil {
			t.Fatalf("timestamp %q within tolerance refused: %v", ts, err)
		}
		if !within {
			if err == nil && ts != "" {
				t.Fatalf("timestamp %q accepted", ts)
			}
			if err != nil {
				assertRefused(t, err, "", sig[3:], secret)
			}
		}
	})
}

// FuzzStandardWebhooks: header parsing never panics, and a request passes
// only when the signature list holds the real v1 signature.
func FuzzStandardWebhooks(f *testing.F) {
	const good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", good)
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+good)
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
	f.Add("", "", "")
	f.Add("x", "1614265330", "v1, v1,, ,v1 v2,abc")
	f.Add("msg", "16142653300", "v1,====")
	body := readFixture(f, "standard-webhooks-test-vector-body.json")
	v := mustNew(f, Config{Scheme: SchemeStandardWebhooks, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	now := time.Unix(1614265330, 0)
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sigs string) {
		r := newRequest(body, "application/json", now)
		r.Header["Webhook-Id"] = []string{id}
		r.Header["Webhook-Timestamp"] = []string{ts}
		r.Header["Webhook-Signature"] = []string{sigs}
		err := v.Verify(r)
		want := "v1," + macB64(sha256.New, string(key), strings.TrimSpace(id)+"."+strings.TrimSpace(ts)+"."+string(body))
		if err == nil {
			found := false
			for _, s := range strings.Fields(sigs) {
				if s == want {
					found = true
				}
			}
			if !found {
				t.Fatalf("accepted without the real signature: id %q ts %q sigs %q", id, ts, sigs)
			}
			return
		}
		assertRefused(t, err, "", want[3:])
		// With the real signature appended, only header problems remain.
		r.Header["Webhook-Signature"] = []string{sigs + " " + want}
		if err2 := v.Verify(r); err2 == nil {
			return
		} else if strings.Contains(err2.Error(), "does not match") {
			t.Fatalf("real signature appended still does not match: id %q ts %q", id, ts)
		}
	})
}

// FuzzHMACVerify: never panics, and only the real signature passes.
func FuzzHMACVerify(f *testing.F) {
	gh := readFixture(f, "github-signature-vector-body.txt")
	f.Add(gh, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Add(gh, "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17")
	f.Add(gh, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18")
	f.Add(gh, "sha1=757107ea")
	f.Add([]byte{}, "")
	f.Add([]byte("x"), "sha256=")
	const secret = "It's a Secret to Everybody"
	v := mustNew(f, Config{Scheme: SchemeGitHub, Secret: secret})
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		r := newRequest(body, "application/json", time.Time{})
		r.Header["X-Hub-Signature-256"] = []string{sig}
		err := v.Verify(r)
		want := macHex(sha256.New, secret, string(body))
		trimmed := strings.TrimSpace(sig)
		isReal := strings.HasPrefix(trimmed, "sha256=") && strings.EqualFold(trimmed[len("sha256="):], want)
		if isReal != (err == nil) {
			t.Fatalf("sig %q for body %q: real=%v, Verify=%v", sig, body, isReal, err)
		}
		if err != nil {
			assertRefused(t, err, "", want, secret)
		}
	})
}
