package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/hookline/hookline/connectors"
)

// Response body limits.
const (
	// keepResponse is how much of a response body an Attempt keeps.
	keepResponse = 4 << 10
	// maxCaptureBody is how much of a response body is read for captures.
	maxCaptureBody = 1 << 20
	// maxDrain is how much more is read to let the connection be reused.
	maxDrain = 64 << 10
)

// Headers every outbound HTTP request carries.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerDelivery       = "X-Hookline-Delivery"
	headerHops           = "X-Hookline-Hops"
	userAgent            = "Hookline/1"
)

// newTransport returns a pooled transport whose dialer applies the egress
// guard to every address it connects to. No proxy is used: a proxy would
// connect on our behalf, out of the guard's sight.
func newTransport(g egressGuard, conns int) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialer().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// tryKey is the context key of a request's *tryState.
type tryKey struct{}

// tryState follows one send through the in-process retry layer.
type tryState struct {
	tries   int
	success []int // the action's success codes: never retried
}

// newRetryClient returns the connector's one in-process retry layer: at
// most quickRetries quick retries for connection errors and retryable
// statuses, honouring a Retry-After of up to maxQuickRetryAfter. A
// timeout, an egress refusal, a 429 without Retry-After and a longer
// Retry-After are returned at once (the outbox retries them). Redirects are
// never followed. The per-try timeout is timeout.
func newRetryClient(tr *http.Transport, timeout time.Duration, retryOn []int, rnd func() float64, now func() time.Time) *retryablehttp.Client {
	hc := &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	check := func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		st, _ := ctx.Value(tryKey{}).(*tryState)
		if st == nil {
			st = &tryState{}
		}
		st.tries++
		if ctx.Err() != nil || st.tries > quickRetries {
			return false, nil
		}
		if err != nil {
			return quickRetryable(err), nil
		}
		code := resp.StatusCode
		if !slices.Contains(retryOn, code) || slices.Contains(st.success, code) {
			return false, nil
		}
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now()); ok {
			return ra <= maxQuickRetryAfter, nil
		}
		// A 429 without Retry-After waits at least a minute in the outbox.
		return code != http.StatusTooManyRequests, nil
	}
	return &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil,
		RetryWaitMin: quickWaitMin,
		RetryWaitMax: quickWaitMax,
		RetryMax:     quickRetries,
		CheckRetry:   check,
		Backoff: func(_, _ time.Duration, i int, resp *http.Response) time.Duration {
			return quickBackoff(i, resp, now(), rnd())
		},
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// quickRetryable reports whether a transport error is worth an immediate
// retry: connection errors are, timeouts (the full timeout was already
// spent) and egress refusals are not.
func quickRetryable(err error) bool {
	return !errors.Is(err, ErrEgressRefused) && !isTimeout(err) &&
		!errors.Is(err, context.Canceled)
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// httpResult is what one send (with its in-process retries) produced.
type httpResult struct {
	status int
	header http.Header
	body   []byte // up to maxCaptureBody when capturing, else keepResponse
	// bodyErr is set when the answer came but the body to read
	// (captures, success_when) was cut off: decide() chooses what it means.
	bodyErr error
	err     error
	tries   int
	latency time.Duration
}

// outRequest is a request ready to send.
type outRequest struct {
	method, url string
	headers     map[string]string
	body        []byte
	deliveryID  string
	hops        int
	action      string // for Authorize ("" for call_webhook)
	success     []int
	capture     bool
}

// authorizer applies a connector's auth and signing to a request.
type authorizer func(req *http.Request, body []byte, action, deliveryID string, now time.Time) error

// send performs r with c. auth may be nil.
func send(ctx context.Context, c *retryablehttp.Client, r outRequest, auth authorizer, now time.Time) httpResult {
	st := &tryState{success: r.success}
	ctx = context.WithValue(ctx, tryKey{}, st)
	start := time.Now()
	res := httpResult{}
	if u, err := url.Parse(r.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Named by scheme://host only, as every other error of a
		// request: its path and query may be a credential.
		res.err = &permanentError{err: fmt.Errorf("cannot send to %s: not an http(s) URL", targetOrigin(r.url))}
		return res
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, r.url, r.body)
	if err != nil {
		res.err = &permanentError{err: fmt.Errorf("build request %s %s: %w", r.method, targetOrigin(r.url), err)}
		return res
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Content-Type") == "" && len(r.body) > 0 && (r.body[0] == '{' || r.body[0] == '[') {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		if err := auth(req.Request, r.body, r.action, r.deliveryID, now); err != nil {
			res.err = &permanentError{err: fmt.Errorf("authorize: %w", err)}
			return res
		}
	}
	// net/http refuses an invalid header only when sending, with an error
	// that looks like a connection failure: it would be retried for days
	// and counted against the breaker. No retry can send it.
	for k, vs := range req.Header {
		for _, v := range vs {
			if err := connectors.CheckHeader(k, v); err != nil {
				res.err = &permanentError{err: fmt.Errorf("build request %s %s: %w", r.method, targetOrigin(r.url), err)}
				return res
			}
		}
	}
	req.Header.Set(headerIdempotencyKey, r.deliveryID)
	req.Header.Set(headerDelivery, r.deliveryID)
	req.Header.Set(headerHops, strconv.Itoa(r.hops))
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.Do(req)
	res.tries = max(st.tries, 1)
	if err != nil {
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		res.err = withoutTargetPath(err)
		res.latency = time.Since(start)
		return res
	}
	limit := int64(keepResponse)
	if r.capture {
		limit = maxCaptureBody
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, limit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	res.latency = time.Since(start)
	res.status = resp.StatusCode
	res.header = resp.Header
	res.body = body
	if rerr != nil && r.capture {
		// The status came but the body to capture from did not.
		res.bodyErr = fmt.Errorf("read response body: %w", rerr)
	}
	return res
}

// transportError is a failed request's *url.Error with the URL cut to
// scheme://host: its path and query may be a credential (a REST-hook
// subscriber's URL is, at Zapier), and the error reaches the log and the
// stored attempts. It unwraps to the cause, and is a timeout when the
// *url.Error was.
type transportError struct {
	op, target string
	err        *url.Error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.op, e.target, e.err.Err)
}

func (e *transportError) Unwrap() error { return e.err.Err }

// Timeout reports whether the request timed out.
func (e *transportError) Timeout() bool { return e.err.Timeout() }

// Temporary is the *url.Error's answer; net.Error still asks for it.
func (e *transportError) Temporary() bool { return e.err.Temporary() }

// withoutTargetPath turns a *url.Error into a transportError naming only
// the target's scheme and host; any other error is returned as it is.
func withoutTargetPath(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &transportError{op: ue.Op, target: targetOrigin(ue.URL), err: ue}
}

// targetOrigin is scheme://host of a URL, without user info, path, query
// or fragment ("(unparsable URL)" when it cannot be read).
func targetOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// responseText is the part of a body an Attempt keeps.
func responseText(b []byte) string {
	if len(b) > keepResponse {
		n := keepResponse
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
