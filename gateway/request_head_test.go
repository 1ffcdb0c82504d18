package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// Requests whose line and headers pass Fiber's default 4 KiB read buffer
// are taken: a GET webhook whose query carries a ticket's text, a POST
// behind proxies that add tracing headers.
func TestLongRequestHeadsAreTaken(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	text := url.QueryEscape(strings.Repeat("The customer wrote a long message. ", 130)) // ~4.5 KB
	get := ts.URL + "/hooks/smartertrack?token=dev-insecure-smartertrack-token&event=ticket_comment_added&id=4711&text=" + text
	if r := do(t, "GET", get, nil, nil); r.Status != 202 {
		t.Errorf("GET webhook with a %d-byte URL: %d %s; want 202", len(get), r.Status, r.Body)
	}
	long := url.QueryEscape(strings.Repeat("x", 40<<10))
	if r := do(t, "GET", strings.Replace(get, "id=4711", "id=4712", 1)+long, nil, nil); r.Status != 202 {
		t.Errorf("GET webhook with a 40 KiB query: %d %s; want 202", r.Status, r.Body)
	}
	h := map[string]string{"Content-Type": "application/json"}
	for i := 0; i < 12; i++ { // 12 x ~380 bytes: tracing and forwarding headers
		h[fmt.Sprintf("X-Trace-Hop-%d", i)] = strings.Repeat("f", 360)
	}
	if r := do(t, "POST", ts.URL+"/hooks/generic", []byte(`{"id":"T-1","status":"open"}`), h); r.Status != 202 {
		t.Errorf("POST with ~4.5 KB of headers: %d %s; want 202", r.Status, r.Body)
	}
}

// A request head over the limit is answered 431 with the limit named.
func TestRequestHeadOverTheLimitIs431(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	u := ts.URL + "/hooks/smartertrack?token=dev-insecure-smartertrack-token&event=ticket_comment_added&id=1&text=" + strings.Repeat("y", maxRequestHead)
	r := do(t, "GET", u, nil, nil)
	if r.Status != 431 {
		t.Fatalf("GET with a %d-byte URL: %d %s; want 431", len(u), r.Status, r.Body)
	}
	if reason, _ := r.JSON(t)["error"].(string); !strings.Contains(reason, fmt.Sprintf("limit of %d bytes", maxRequestHead)) {
		t.Fatalf("reason %q does not name the limit of %d bytes", reason, maxRequestHead)
	}
}

// Idle keep-alive connections do not each hold a maxRequestHead read
// buffer: the buffers go back to a pool between requests.
func TestIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	const conns = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", ts.Server.Addr())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: hookline\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// With a buffer per connection the heap grows by conns*maxRequestHead
	// (12.5 MiB); without, by a few KiB per connection.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > conns*maxRequestHead/4 {
		t.Fatalf("%d idle connections grew the heap by %d bytes, %d each: they hold their read buffers", conns, grown, grown/conns)
	}
}
